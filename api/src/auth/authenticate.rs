//! From a request's credentials to its `Principal`. A credential that is
//! present but not valid here ends the request with `UNAUTHENTICATED`; none
//! at all is anonymous.

use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    Auth, Principal, Scope, api_key,
    principal::ApiKeyPrincipal,
    tokens::Verified,
};
use crate::{
    cache,
    error::{ApiError, ApiResult},
    store::{self, TenantDb},
    tenancy::ResolvedTenant,
};

/// How long a key's record is trusted from the cache; revoking drops it.
const KEY_CACHE_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, Default, Clone, Copy)]
pub struct Credentials<'a> {
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The `X-API-Key` header.
    pub api_key: Option<&'a str>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CachedKey {
    id: Uuid,
    secret_hash: String,
    scope: String,
    expires_at: Option<i64>,
    revoked: bool,
}

pub fn key_cache_key(tenant: Uuid, prefix: &str) -> String {
    cache::tenant_key(tenant, "api-key", prefix)
}

/// The token of an `Authorization: Bearer …` value, if it is one.
pub fn bearer(authorization: &str) -> Option<&str> {
    authorization
        .strip_prefix("Bearer ")
        .or_else(|| authorization.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

pub async fn authenticate(
    auth: &Auth,
    resolved: &ResolvedTenant,
    db: Option<&TenantDb>,
    creds: Credentials<'_>,
) -> ApiResult<Principal> {
    authenticate_access(auth, resolved, db, creds).await.map(|a| a.principal)
}

/// Who a credential acts as, and for how long: what a long-lived connection
/// (a subscription's WebSocket) keeps checking.
#[derive(Debug, Clone)]
pub struct Access {
    pub principal: Principal,
    /// When its access token was issued (µs); `None` for an API key or no one.
    pub issued_us: Option<i64>,
    /// When its access token expires (seconds since the epoch).
    pub expires_at: Option<i64>,
}

impl Access {
    fn lasting(principal: Principal) -> Self {
        Self { principal, issued_us: None, expires_at: None }
    }
}

pub async fn authenticate_access(
    auth: &Auth,
    resolved: &ResolvedTenant,
    db: Option<&TenantDb>,
    creds: Credentials<'_>,
) -> ApiResult<Access> {
    let bearer = match creds.authorization {
        None => None,
        Some(h) => Some(bearer(h).ok_or(ApiError::Unauthenticated)?),
    };
    match (bearer, creds.api_key) {
        (None, None) => Ok(Access::lasting(Principal::Anonymous)),
        (Some(_), Some(_)) => Err(ApiError::Unauthenticated),
        (None, Some(key)) => api_key_principal(auth, resolved, db, key).await.map(Access::lasting),
        (Some(token), None) if token.starts_with("agk_") => api_key_principal(auth, resolved, db, token).await.map(Access::lasting),
        (Some(token), None) => {
            let tenant = resolved.tenant.as_ref().map(|t| t.id);
            let (verified, expires_at) = auth.tokens.verify_until(token, tenant)?;
            let (principal, issued_us) = match verified {
                Verified::User { principal, issued_us } => {
                    auth.revocations.check_user(&principal, issued_us).await?;
                    (Principal::User(principal), issued_us)
                }
                Verified::Admin { principal, issued_us } => {
                    auth.revocations.check_admin(&principal, issued_us).await?;
                    (Principal::PlatformAdmin(principal), issued_us)
                }
            };
            Ok(Access { principal, issued_us: Some(issued_us), expires_at: Some(expires_at) })
        }
    }
}

async fn api_key_principal(
    auth: &Auth,
    resolved: &ResolvedTenant,
    db: Option<&TenantDb>,
    key: &str,
) -> ApiResult<Principal> {
    let (Some(tenant), Some(db)) = (resolved.tenant.as_ref(), db) else {
        return Err(ApiError::TenantRequired);
    };
    let (prefix, secret) = api_key::parse(key.trim()).ok_or(ApiError::Unauthenticated)?;
    let record = key_record(auth, db, tenant.id, prefix).await?.ok_or(ApiError::Unauthenticated)?;
    let expired = record.expires_at.is_some_and(|at| at <= Utc::now().timestamp());
    if record.revoked || expired || !api_key::secret_matches(secret, &record.secret_hash) {
        return Err(ApiError::Unauthenticated);
    }
    let scope = Scope::parse(&record.scope).ok_or(ApiError::Unauthenticated)?;
    auth.key_uses.record(tenant.id, record.id);
    Ok(Principal::ApiKey(ApiKeyPrincipal { key_id: record.id, tenant_id: tenant.id, scope }))
}

async fn key_record(auth: &Auth, db: &TenantDb, tenant: Uuid, prefix: &str) -> ApiResult<Option<CachedKey>> {
    let cache_key = key_cache_key(tenant, prefix);
    if let Ok(Some(bytes)) = auth.cache.get(&cache_key).await
        && let Ok(found) = serde_json::from_slice::<Option<CachedKey>>(&bytes)
    {
        return Ok(found);
    }
    let found = store::api_keys::by_prefix(db, prefix).await?.map(|m| CachedKey {
        id: m.id,
        secret_hash: m.secret_hash,
        scope: m.scope,
        expires_at: m.expires_at.map(|t| t.timestamp()),
        revoked: m.revoked_at.is_some(),
    });
    if let Ok(bytes) = serde_json::to_vec(&found) {
        let _ = auth.cache.set(&cache_key, &bytes, KEY_CACHE_TTL).await;
    }
    Ok(found)
}
