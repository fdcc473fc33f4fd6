use async_graphql::{Context, ID, Object};

use crate::{
    auth::flows,
    graphql::{
        guards::{PlatformAdminOnly, Public},
        parse_id, request, state,
        types::{PlatformAuthPayload, Tenant},
    },
    store,
};

#[derive(Default)]
pub struct PlatformMutation;

async fn set_active(ctx: &Context<'_>, id: ID, active: bool) -> async_graphql::Result<Tenant> {
    let s = state(ctx)?;
    let id = parse_id(&id, "tenant")?;
    let model = store::platform::set_tenant_active(s.db.platform(), id, active).await?;
    if !active {
        // End every session of the agency, not only pause them: reactivating
        // it must not bring old tokens back.
        let db = s.db.scoped(id);
        let ended = store::sessions::revoke_tenant(&db).await;
        db.finish(ended.is_ok()).await?;
        ended?;
        s.auth.revocations.cut_tenant(id).await?;
    }
    // Every replica resolves hosts through the shared cache: dropping the
    // entry makes the change apply from the next request on.
    s.tenants.forget(&crate::tenancy::Tenant::from(model.clone())).await;
    Ok(model.into())
}

#[Object]
impl PlatformMutation {
    /// Signs a platform administrator in, on the general API host.
    #[graphql(guard = "Public")]
    async fn platform_login(&self, ctx: &Context<'_>, email: String, password: String) -> async_graphql::Result<PlatformAuthPayload> {
        let (access_token, access_token_expires_at) = flows::platform_login(state(ctx)?, request(ctx)?, &email, &password).await?;
        Ok(PlatformAuthPayload { access_token, access_token_expires_at })
    }

    /// Deactivates an agency: every request to it is refused until it is
    /// reactivated.
    #[graphql(guard = "PlatformAdminOnly")]
    async fn deactivate_tenant(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Tenant> {
        set_active(ctx, id, false).await
    }

    #[graphql(guard = "PlatformAdminOnly")]
    async fn reactivate_tenant(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Tenant> {
        set_active(ctx, id, true).await
    }
}
