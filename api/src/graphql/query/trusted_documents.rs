use async_graphql::{Context, Object};

use crate::{
    auth::Role,
    graphql::{
        guards::RoleAtLeast,
        request,
        types::{TrustedDocumentManifest, TrustedDocumentSettings},
    },
    persisted::Mode,
    store::{TenantDb, trusted_documents as store},
};

#[derive(Default)]
pub struct TrustedDocumentsQuery;

#[Object]
impl TrustedDocumentsQuery {
    /// The agency's trusted-documents manifests, the latest (active) first.
    #[graphql(guard = "RoleAtLeast(Role::Admin)")]
    async fn trusted_document_manifests(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TrustedDocumentManifest>> {
        let rows = store::list(request(ctx)?.db()?).await?;
        Ok(rows.into_iter().enumerate().map(|(i, m)| TrustedDocumentManifest::from_model(m, i == 0)).collect())
    }

    /// The agency's trusted-documents mode for API keys and its active manifest.
    #[graphql(guard = "RoleAtLeast(Role::Admin)")]
    async fn trusted_document_settings(&self, ctx: &Context<'_>) -> async_graphql::Result<TrustedDocumentSettings> {
        settings(request(ctx)?.db()?).await
    }
}

/// The agency's mode (`OFF` while never set) and active manifest.
pub(crate) async fn settings(db: &TenantDb) -> async_graphql::Result<TrustedDocumentSettings> {
    let row = store::mode(db).await?;
    let active = store::latest(db).await?.map(|m| TrustedDocumentManifest::from_model(m, true));
    Ok(TrustedDocumentSettings {
        mode: row.as_ref().and_then(|r| Mode::parse(&r.mode)).unwrap_or_default(),
        active_manifest: active,
        mode_updated_at: row.map(|r| r.updated_at),
    })
}
