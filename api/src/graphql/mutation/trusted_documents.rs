use async_graphql::{Context, Object};

use crate::{
    auth::Role,
    error::ApiError,
    graphql::{
        guards::RoleAtLeast,
        request, state,
        types::{TrustedDocumentManifest, TrustedDocumentManifestJson, TrustedDocumentSettings},
    },
    persisted::{Mode, TrustedChanged},
    store::{audit::Event, trusted_documents::Uploader},
};

#[derive(Default)]
pub struct TrustedDocumentsMutation;

#[Object]
impl TrustedDocumentsMutation {
    /// Uploads a manifest of trusted documents (Apollo's persisted query
    /// manifest or Relay's `persisted-queries.json`). It becomes the next
    /// version and the active one; to go back, upload the older file again.
    /// Through the API a manifest must fit one GraphQL request (1 MiB);
    /// larger ones go through `aggios tenant trusted-documents upload`.
    #[graphql(guard = "RoleAtLeast(Role::Admin)")]
    async fn upload_trusted_documents(&self, ctx: &Context<'_>, manifest: TrustedDocumentManifestJson) -> async_graphql::Result<TrustedDocumentManifest> {
        let r = request(ctx)?;
        let me = r.principal.user().ok_or(ApiError::Unauthenticated)?;
        let uploader = Uploader { user_id: Some(me.user_id), label: me.email.clone() };
        let model = state(ctx)?.persisted.trusted.upload(r.db()?, &manifest.0, uploader).await?;
        let changes = serde_json::json!({ "version": model.version, "format": model.format, "operationCount": model.operation_count });
        r.audit(Event { action: "trusted_documents.upload", target_type: "trusted_document_manifest", target_id: Some(model.id), changes: Some(changes) })
            .await?;
        r.extension_or_insert_with(|| TrustedChanged);
        Ok(TrustedDocumentManifest::from_model(model, true))
    }

    /// Sets what the agency asks of its API keys' operations: `REQUIRE`
    /// runs only the active manifest's operations, by id; `LOG_UNKNOWN`
    /// runs anything and logs what is not in it; `OFF` asks nothing. Users
    /// (the agency's own apps and people) are never restricted by it.
    #[graphql(guard = "RoleAtLeast(Role::Admin)")]
    async fn set_trusted_documents_mode(&self, ctx: &Context<'_>, mode: Mode) -> async_graphql::Result<TrustedDocumentSettings> {
        let r = request(ctx)?;
        let me = r.principal.user().ok_or(ApiError::Unauthenticated)?;
        let db = r.db()?;
        state(ctx)?.persisted.trusted.set_mode(db, mode, Some(me.user_id)).await?;
        let changes = serde_json::json!({ "mode": mode.as_str() });
        r.audit(Event { action: "trusted_documents.mode", target_type: "tenant", target_id: Some(db.tenant()), changes: Some(changes) }).await?;
        r.extension_or_insert_with(|| TrustedChanged);
        super::super::query::trusted_documents::settings(db).await
    }
}
