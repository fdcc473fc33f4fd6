use async_graphql::{Context, ID, Object};

use crate::{
    auth::{Role, api_key, authenticate::key_cache_key},
    error::ApiError,
    graphql::{
        guards::RoleAtLeast,
        parse_id, request, state,
        types::{CreateApiKeyInput, CreatedApiKey},
    },
    store::{self, audit::Event, validate},
};

#[derive(Default)]
pub struct ApiKeyMutation;

#[Object]
impl ApiKeyMutation {
    /// Creates an API key for an integrator. The secret is in this answer
    /// only.
    #[graphql(guard = "RoleAtLeast(Role::Admin)")]
    async fn create_api_key(&self, ctx: &Context<'_>, input: CreateApiKeyInput) -> async_graphql::Result<CreatedApiKey> {
        let r = request(ctx)?;
        let me = r.principal.user().ok_or(ApiError::Unauthenticated)?;
        let name = validate::name("name", &input.name, 100)?;
        if input.expires_at.is_some_and(|at| at <= chrono::Utc::now()) {
            return Err(ApiError::BadUserInput { field: "expiresAt", message: "must be in the future".into() }.into());
        }
        let key = api_key::generate();
        let model = store::api_keys::create(r.db()?, name, input.scope, input.expires_at, me.user_id, &key.prefix, &key.secret_hash).await?;
        let changes = serde_json::json!({ "name": model.name, "scope": model.scope, "prefix": model.prefix });
        r.audit(Event { action: "api_key.create", target_type: "api_key", target_id: Some(model.id), changes: Some(changes) }).await?;
        Ok(CreatedApiKey { api_key: model.into(), secret: key.key })
    }

    /// Revokes an API key; it stops working at once.
    #[graphql(guard = "RoleAtLeast(Role::Admin)")]
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let r = request(ctx)?;
        let db = r.db()?;
        let id = parse_id(&id, "API key")?;
        let key = store::api_keys::by_id(db, id).await?.ok_or(ApiError::NotFound("API key"))?;
        store::api_keys::revoke(db, id).await?;
        r.audit(Event { action: "api_key.revoke", target_type: "api_key", target_id: Some(id), changes: None }).await?;
        if let Err(e) = state(ctx)?.cache.delete(&key_cache_key(db.tenant(), &key.prefix)).await {
            // The cached record expires within seconds anyway.
            tracing::warn!(error = %e, "could not drop a revoked key from the cache");
        }
        Ok(true)
    }
}
