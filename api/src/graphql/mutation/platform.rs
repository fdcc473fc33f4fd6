use async_graphql::{Context, ID, Object};

use crate::{
    identity::flows,
    graphql::{
        guards::{PlatformAdminOnly, SignIn},
        parse_id, request, state,
        types::{PlatformAuthPayload, Tenant},
    },
    error::ApiError,
    store::{self, audit::Event},
};

#[derive(Default)]
pub struct PlatformMutation;

async fn set_active(ctx: &Context<'_>, id: ID, active: bool) -> async_graphql::Result<Tenant> {
    let s = state(ctx)?;
    let id = parse_id(&id, "tenant")?;
    let r = request(ctx)?;
    let model = {
        // A platform table, written outside any tenant handle: the write
        // takes the SQLite writer's turn itself, and ends before the agency's
        // own transaction below takes it.
        let _turn = s.db.write_turn().await.map_err(ApiError::from)?;
        store::platform::set_tenant_active(s.db.platform(), id, active).await?
    };
    // In the agency's own trail, in a transaction of the agency's. Ending
    // every session (not only pausing them) keeps reactivation from bringing
    // old tokens back.
    let db = s.db.scoped(id);
    let done = async {
        if !active {
            store::sessions::revoke_tenant(&db).await?;
            s.auth.revocations.cut_tenant(&db, id).await?;
        }
        let admin = match &r.principal {
            crate::auth::Principal::PlatformAdmin(a) => Some(a.admin_id.to_string()),
            _ => None,
        };
        let event = Event {
            action: if active { "tenant.reactivate" } else { "tenant.deactivate" },
            target_type: "tenant",
            target_id: Some(id),
            changes: Some(serde_json::json!({ "isActive": active, "platformAdminId": admin })),
        };
        store::audit::record(&db, (None, None), &r.request_id, event).await
    }
    .await;
    db.finish(done.is_ok()).await?;
    done?;
    // Every replica resolves hosts through the shared cache: dropping the
    // entry makes the change apply from the next request on.
    s.tenants.forget(&crate::tenancy::Tenant::from(model.clone())).await;
    Ok(model.into())
}

#[Object]
impl PlatformMutation {
    /// Signs a platform administrator in, on the general API host.
    #[graphql(guard = "SignIn")]
    async fn platform_login(&self, ctx: &Context<'_>, email: String, password: String) -> async_graphql::Result<PlatformAuthPayload> {
        let (access_token, access_token_expires_at) = flows::platform_login(&state(ctx)?.identity, request(ctx)?, &email, &password).await?;
        Ok(PlatformAuthPayload { access_token, access_token_expires_at })
    }

    /// Ends every access token of the signed-in platform administrator, on
    /// every replica within a second; sign in again with `platformLogin`.
    #[graphql(guard = "PlatformAdminOnly")]
    async fn platform_logout_everywhere(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(flows::platform_logout_everywhere(&state(ctx)?.identity, request(ctx)?).await?)
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
