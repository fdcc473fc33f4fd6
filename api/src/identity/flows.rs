//! The sign-in flows: sign-up, login, refresh, logout, password change, and
//! the platform administrator's login. Each takes the request context and
//! returns models; the GraphQL layer only maps them.

use chrono::{DateTime, Utc};
use entity::{tenants, users};
use uuid::Uuid;

use super::Identity;
use crate::{
    auth::{
        Principal, Role,
        password::check_policy,
        principal::{AdminPrincipal, UserPrincipal},
    },
    error::{ApiError, ApiResult},
    store::{
        self, TenantDb, validate,
        audit::{self, Event},
        sessions::{self, Rotation},
        tenants::NewTenant,
        users::{NewUser, normalize_email},
    },
    request::RequestContext,
    tenancy::HostKind,
};

/// A session just started or refreshed.
#[derive(Debug)]
pub struct SignedIn {
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub user: users::Model,
    pub tenant: tenants::Model,
}

#[derive(Debug)]
pub struct SignUp {
    pub agency_name: String,
    pub subdomain: String,
    pub email: String,
    pub password: String,
    pub first_name: String,
    pub last_name: String,
}

/// Runs `f` in a transaction of `tenant` of its own, committed when `f`
/// returns `Ok` — whatever becomes of the rest of the request.
async fn in_tenant<T>(
    identity: &Identity,
    tenant: Uuid,
    f: impl AsyncFnOnce(&TenantDb) -> ApiResult<T>,
) -> ApiResult<T> {
    let db = identity.db.scoped(tenant);
    let result = f(&db).await;
    db.finish(result.is_ok()).await?;
    result
}

fn issue(identity: &Identity, user: &users::Model, session: &sessions::Issued) -> ApiResult<(String, DateTime<Utc>)> {
    identity.auth.tokens.issue_user(&UserPrincipal {
        user_id: user.id,
        tenant_id: user.tenant_id,
        role: Role::parse(&user.role).unwrap_or(Role::Member),
        email: user.email.clone(),
        session_id: session.row.family_id,
    })
}

fn signed_in(identity: &Identity, user: users::Model, tenant: tenants::Model, session: sessions::Issued) -> ApiResult<SignedIn> {
    let (access_token, access_expires_at) = issue(identity, &user, &session)?;
    Ok(SignedIn {
        access_token,
        access_expires_at,
        refresh_token: session.token,
        refresh_expires_at: session.row.idle_expires_at,
        user,
        tenant,
    })
}

fn require_api_host(ctx: &RequestContext, what: &'static str) -> ApiResult<()> {
    if ctx.resolved.host == HostKind::Api && ctx.resolved.tenant.is_none() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(what))
    }
}

pub async fn sign_up(identity: &Identity, ctx: &RequestContext, input: SignUp) -> ApiResult<SignedIn> {
    require_api_host(ctx, "sign up on the general API host (api.{base domain}) without X-Tenant")?;
    let email = normalize_email(&input.email)?;
    let first_name = validate::name("firstName", &input.first_name, 100)?;
    let last_name = validate::name("lastName", &input.last_name, 100)?;
    store::tenants::validate_name("agencyName", &input.agency_name)?;
    store::tenants::validate_subdomain(&input.subdomain)?;
    check_policy(&input.password, &[&email, &first_name, &last_name, &input.subdomain, &input.agency_name])?;
    let password_hash = identity.auth.passwords.hash(&input.password).await?;
    let tenant_id = Uuid::now_v7();
    let (user, tenant, session) = in_tenant(identity, tenant_id, async |db| {
        let tenant = store::tenants::create(
            db,
            tenant_id,
            NewTenant { name: input.agency_name.clone(), subdomain: input.subdomain.clone(), custom_domain: None },
        )
        .await?;
        let user = store::users::create(db, NewUser { email, password_hash, first_name, last_name, role: Role::Owner }).await?;
        let session = sessions::start(db, user.id, identity.auth.lifetimes, &ctx.client).await?;
        let event = Event {
            action: "tenant.sign_up",
            target_type: "tenant",
            target_id: Some(tenant.id),
            changes: Some(serde_json::json!({ "subdomain": tenant.subdomain, "owner": user.email })),
        };
        audit::record(db, (Some(user.id), None), &ctx.request_id, event).await?;
        Ok((user, tenant, session))
    })
    .await?;
    // A look-up of this host before the sign-up is cached as a miss, on
    // every replica (the cache is shared): it must not outlive the agency's
    // creation.
    identity.tenants.forget(&crate::tenancy::Tenant::from(tenant.clone())).await;
    signed_in(identity, user, tenant, session)
}

pub async fn login(identity: &Identity, ctx: &RequestContext, email: &str, password: &str, agency: Option<&str>) -> ApiResult<SignedIn> {
    let ip = ctx.client_ip();
    let account = email.trim().to_lowercase();
    let attempt = identity.auth.throttle.reserve(&account, ip).await?;
    let tenant_filter = match (&ctx.resolved.tenant, agency) {
        (Some(t), _) => Some(Some(t.id)),
        (None, Some(sub)) => Some(store::tenants::by_subdomain(identity.db.platform(), &sub.trim().to_lowercase()).await?.map(|t| t.id)),
        (None, None) => None,
    };
    let candidates = match (normalize_email(email), tenant_filter) {
        // A malformed email or an unknown agency matches nobody.
        (Err(_), _) | (Ok(_), Some(None)) => Vec::new(),
        (Ok(email), filter) => store::logins::candidates(&identity.db, &email, filter.flatten()).await?,
    };
    // Exactly one password check, whatever the number of accounts: against
    // the oldest account of the email that can sign in (or, when none can,
    // the oldest at all, or a dummy hash), so that neither the answer nor
    // its time tells in how many agencies an email is.
    let usable = |c: &&store::logins::Candidate| c.user.is_active && c.tenant.is_active;
    let oldest = |it: &mut dyn Iterator<Item = &store::logins::Candidate>| it.min_by_key(|c| (c.user.created_at, c.user.id)).cloned();
    let chosen = oldest(&mut candidates.iter().filter(usable)).or_else(|| oldest(&mut candidates.iter()));
    let ok = identity.auth.passwords.verify(password, chosen.as_ref().map(|c| c.user.password_hash.as_str())).await?;
    let chosen = match chosen {
        Some(c) if ok && usable(&&c) => c,
        other => {
            // The reservation stays: it counts as a failure.
            drop(attempt);
            let failed_in = match (other, &ctx.resolved.tenant) {
                (Some(c), _) => Some((c.tenant.id, Some(c.user.id))),
                (None, Some(t)) => Some((t.id, None)),
                (None, None) => None,
            };
            record_failed_login(identity, ctx, failed_in);
            return Err(ApiError::InvalidCredentials);
        }
    };
    identity.auth.throttle.succeeded(attempt).await;
    if candidates.iter().filter(usable).count() > 1 {
        // Said only to whoever knows the password.
        return Err(ApiError::Conflict(
            "this email signs in to several agencies: name the agency (the `agency` field) or sign in on its own address".into(),
        ));
    }
    let session = in_tenant(identity, chosen.tenant.id, async |db| {
        let session = sessions::start(db, chosen.user.id, identity.auth.lifetimes, &ctx.client).await?;
        let event = Event { action: "auth.login", target_type: "user", target_id: Some(chosen.user.id), changes: None };
        audit::record(db, (Some(chosen.user.id), None), &ctx.request_id, event).await?;
        Ok(session)
    })
    .await?;
    signed_in(identity, chosen.user, chosen.tenant, session)
}

/// A failed sign-in goes to the agency's audit trail in a transaction of its
/// own (the request itself fails), after the answer: its cost must not tell
/// whether the account exists. A failure to record is logged.
fn record_failed_login(identity: &Identity, ctx: &RequestContext, failed_in: Option<(Uuid, Option<Uuid>)>) {
    let Some((tenant, user)) = failed_in else { return };
    let identity = identity.clone();
    let request_id = ctx.request_id.clone();
    tokio::spawn(async move {
        let recorded = in_tenant(&identity, tenant, async |db| {
            let event = Event { action: "auth.login_failed", target_type: "user", target_id: user, changes: None };
            audit::record(db, (None, None), &request_id, event).await
        })
        .await;
        if let Err(e) = recorded {
            tracing::warn!(error = ?e, "could not audit a failed sign-in");
        }
    });
}

pub async fn refresh(identity: &Identity, ctx: &RequestContext, token: &str) -> ApiResult<SignedIn> {
    let tenant_id = store::refresh_token::tenant_of(token).ok_or(ApiError::Unauthenticated)?;
    if ctx.resolved.tenant.as_ref().is_some_and(|t| t.id != tenant_id) {
        return Err(ApiError::Unauthenticated);
    }
    let tenant = store::tenants::by_id(identity.db.platform(), tenant_id)
        .await?
        .filter(|t| t.is_active)
        .ok_or(ApiError::Unauthenticated)?;
    let outcome = in_tenant(identity, tenant_id, async |db| {
        match sessions::rotate(db, token, identity.auth.lifetimes, &ctx.client).await? {
            Rotation::Rotated { issued, user } => match store::users::by_id(db, user).await? {
                Some(user) if user.is_active => Ok(Ok((user, issued))),
                _ => {
                    sessions::revoke_family(db, issued.row.family_id).await?;
                    Ok(Err(()))
                }
            },
            Rotation::Reused { family, user } => {
                tracing::warn!(%family, %user, "a spent refresh token was presented again; the session is revoked");
                let event = Event {
                    action: "auth.refresh_reuse",
                    target_type: "session",
                    target_id: Some(family),
                    changes: None,
                };
                audit::record(db, (Some(user), None), &ctx.request_id, event).await?;
                identity.auth.revocations.revoke_session(db, tenant_id, family).await?;
                Ok(Err(()))
            }
            Rotation::Refused => Ok(Err(())),
        }
    })
    .await?;
    match outcome {
        Ok((user, issued)) => signed_in(identity, user, tenant, *issued),
        Err(()) => Err(ApiError::Unauthenticated),
    }
}

fn current_user(ctx: &RequestContext) -> ApiResult<&UserPrincipal> {
    ctx.principal.user().ok_or(ApiError::Unauthenticated)
}

/// Ends this request's session.
pub async fn logout(identity: &Identity, ctx: &RequestContext) -> ApiResult<bool> {
    let me = current_user(ctx)?;
    let db = ctx.db()?.as_ref();
    sessions::revoke_family(db, me.session_id).await?;
    ctx.audit(Event { action: "auth.logout", target_type: "session", target_id: Some(me.session_id), changes: None }).await?;
    identity.auth.revocations.revoke_session(db, me.tenant_id, me.session_id).await?;
    Ok(true)
}

/// Ends every session of the user; returns how many were live.
pub async fn logout_everywhere(identity: &Identity, ctx: &RequestContext) -> ApiResult<u64> {
    let me = current_user(ctx)?;
    let db = ctx.db()?.as_ref();
    let n = sessions::revoke_all(db, me.user_id).await?;
    let event = Event {
        action: "auth.logout_everywhere",
        target_type: "user",
        target_id: Some(me.user_id),
        changes: Some(serde_json::json!({ "sessions": n })),
    };
    ctx.audit(event).await?;
    identity.auth.revocations.cut_user(db, me.tenant_id, me.user_id).await?;
    Ok(n)
}

pub async fn revoke_session(identity: &Identity, ctx: &RequestContext, session: Uuid) -> ApiResult<bool> {
    let me = current_user(ctx)?;
    let db = ctx.db()?.as_ref();
    if !sessions::revoke_user_session(db, me.user_id, session).await? {
        return Err(ApiError::NotFound("session"));
    }
    ctx.audit(Event { action: "auth.session_revoke", target_type: "session", target_id: Some(session), changes: None }).await?;
    identity.auth.revocations.revoke_session(db, me.tenant_id, session).await?;
    Ok(true)
}

/// Checks the current password, sets the new one, ends every session, and
/// starts a fresh one for this client.
pub async fn change_password(identity: &Identity, ctx: &RequestContext, current: &str, new: &str) -> ApiResult<SignedIn> {
    let me = current_user(ctx)?.clone();
    let db = ctx.db()?.as_ref();
    let ip = ctx.client_ip();
    let attempt = identity.auth.throttle.reserve(&me.email, ip).await?;
    let user = store::users::by_id(db, me.user_id).await?.ok_or(ApiError::Unauthenticated)?;
    if !identity.auth.passwords.verify(current, Some(&user.password_hash)).await? {
        drop(attempt);
        return Err(ApiError::BadUserInput { field: "currentPassword", message: "is not your current password".into() });
    }
    identity.auth.throttle.succeeded(attempt).await;
    check_policy(new, &[&user.email, &user.first_name, &user.last_name])?;
    let hash = identity.auth.passwords.hash(new).await?;
    let mut model: users::ActiveModel = user.into();
    model.password_hash = sea_orm::ActiveValue::Set(hash);
    let user = store::users::save(db, model).await?;
    sessions::revoke_all(db, me.user_id).await?;
    ctx.audit(Event { action: "user.password_change", target_type: "user", target_id: Some(me.user_id), changes: None }).await?;
    identity.auth.revocations.cut_user(db, me.tenant_id, me.user_id).await?;
    let session = sessions::start(db, me.user_id, identity.auth.lifetimes, &ctx.client).await?;
    let tenant = store::tenants::by_id(identity.db.platform(), me.tenant_id).await?.ok_or(ApiError::TenantNotFound)?;
    signed_in(identity, user, tenant, session)
}

pub async fn platform_login(identity: &Identity, ctx: &RequestContext, email: &str, password: &str) -> ApiResult<(String, DateTime<Utc>)> {
    require_api_host(ctx, "platform administrators sign in on the general API host without X-Tenant")?;
    let ip = ctx.client_ip();
    let account = format!("platform:{}", email.trim().to_lowercase());
    let attempt = identity.auth.throttle.reserve(&account, ip).await?;
    let admin = match normalize_email(email) {
        Ok(e) => store::platform::admin_by_email(identity.db.platform(), &e).await?,
        Err(_) => None,
    };
    let ok = identity.auth.passwords.verify(password, admin.as_ref().map(|a| a.password_hash.as_str())).await?;
    match admin {
        Some(admin) if ok && admin.is_active => {
            identity.auth.throttle.succeeded(attempt).await;
            identity.auth.tokens.issue_admin(&AdminPrincipal { admin_id: admin.id, email: admin.email })
        }
        _ => {
            drop(attempt);
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// Ends every access token the signed-in platform administrator holds, on
/// every replica within a second (as `logoutEverywhere` does for a user);
/// they sign in again with `platformLogin`.
pub async fn platform_logout_everywhere(identity: &Identity, ctx: &RequestContext) -> ApiResult<bool> {
    let Principal::PlatformAdmin(admin) = &ctx.principal else {
        return Err(ApiError::Unauthenticated);
    };
    identity.auth.revocations.cut_admin(identity.db.platform(), admin.admin_id).await?;
    Ok(true)
}
