//! Ending access at once, on every replica: access tokens are short-lived but
//! not revocable by themselves, so each request checks markers in the shared
//! cache — a per-user cut (tokens issued up to then are refused: logout
//! everywhere, password change, deactivation), a per-tenant cut (the tenant
//! was deactivated) and a per-session mark (logout, session revoked, refresh
//! reuse). Markers live as long as a token could.

use std::{sync::Arc, time::Duration};

use uuid::Uuid;

use super::principal::{AdminPrincipal, UserPrincipal};
use crate::{
    cache::{self, Cache},
    error::{ApiError, ApiResult},
};

#[derive(Debug, Clone)]
pub struct Revocations {
    cache: Arc<dyn Cache>,
    ttl: Duration,
}

fn user_cut(tenant: Uuid, user: Uuid) -> String {
    cache::tenant_key(tenant, "auth-user-cut", &user.to_string())
}

fn session_mark(tenant: Uuid, session: Uuid) -> String {
    cache::tenant_key(tenant, "auth-session-revoked", &session.to_string())
}

fn tenant_cut(tenant: Uuid) -> String {
    cache::tenant_key(tenant, "auth-tenant-cut", "all")
}

fn admin_cut(admin: Uuid) -> String {
    cache::platform_key("auth-admin-cut", &admin.to_string())
}

fn unavailable(e: cache::CacheError) -> ApiError {
    tracing::error!(error = %e, "revocation markers unavailable");
    ApiError::Unavailable("the session store")
}

impl Revocations {
    /// `token_ttl`: the access-token lifetime; markers outlive it a little.
    pub fn new(cache: Arc<dyn Cache>, token_ttl: Duration) -> Self {
        Self { cache, ttl: token_ttl + Duration::from_secs(60) }
    }

    /// Refuses every access token of `user` issued until now.
    pub async fn cut_user(&self, tenant: Uuid, user: Uuid) -> ApiResult<()> {
        let now = chrono::Utc::now().timestamp_micros().to_string();
        self.cache.set(&user_cut(tenant, user), now.as_bytes(), self.ttl).await.map_err(unavailable)
    }

    /// Refuses every access token of every user of `tenant` issued until now
    /// (the tenant was deactivated: reactivating it must not revive them).
    pub async fn cut_tenant(&self, tenant: Uuid) -> ApiResult<()> {
        let now = chrono::Utc::now().timestamp_micros().to_string();
        self.cache.set(&tenant_cut(tenant), now.as_bytes(), self.ttl).await.map_err(unavailable)
    }

    pub async fn revoke_session(&self, tenant: Uuid, session: Uuid) -> ApiResult<()> {
        self.cache.set(&session_mark(tenant, session), b"1", self.ttl).await.map_err(unavailable)
    }

    pub async fn cut_admin(&self, admin: Uuid) -> ApiResult<()> {
        let now = chrono::Utc::now().timestamp_micros().to_string();
        self.cache.set(&admin_cut(admin), now.as_bytes(), self.ttl).await.map_err(unavailable)
    }

    /// One round trip for the three markers.
    pub async fn check_user(&self, user: &UserPrincipal, issued_us: i64) -> ApiResult<()> {
        let keys = [
            user_cut(user.tenant_id, user.user_id),
            session_mark(user.tenant_id, user.session_id),
            tenant_cut(user.tenant_id),
        ];
        let found = self.cache.get_many(&keys).await.map_err(unavailable)?;
        if cut_applies(found.first(), issued_us)
            || found.get(1).is_some_and(Option::is_some)
            || cut_applies(found.get(2), issued_us)
        {
            return Err(ApiError::Unauthenticated);
        }
        Ok(())
    }

    pub async fn check_admin(&self, admin: &AdminPrincipal, issued_us: i64) -> ApiResult<()> {
        let found = self.cache.get_many(&[admin_cut(admin.admin_id)]).await.map_err(unavailable)?;
        if cut_applies(found.first(), issued_us) {
            return Err(ApiError::Unauthenticated);
        }
        Ok(())
    }
}

/// A token issued before the cut is refused. Both instants come from the
/// same kind of clock, in microseconds; a session started right after the
/// cut (a password change) is issued after it, so it stands.
fn cut_applies(marker: Option<&Option<Vec<u8>>>, issued_us: i64) -> bool {
    marker
        .and_then(|m| m.as_deref())
        .and_then(|b| std::str::from_utf8(b).ok()?.parse::<i64>().ok())
        .is_some_and(|cut| issued_us < cut)
}
