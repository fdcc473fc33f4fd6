//! The steps of an API request, each in one place. Middleware (see
//! `routes`) gives every request its id, its client address, its API
//! version, its CORS answer, security headers and compression; a route then
//! calls, in order: the CSRF check (`csrf`), the tenant from the Host
//! ([`tenant`]), authentication and the request's rate limits ([`begin`]),
//! execution (its own), and the
//! commit or rollback of the request's transaction ([`end`]). `/graphql` and
//! the file routes share them, and a WebSocket `connection_init` will too.

use poem::Request;

use super::{ClientAddr, RequestId, request_host};
use crate::{
    auth::authenticate::{Credentials, authenticate},
    error::ApiError,
    request::RequestContext,
    state::AppState,
    store::sessions::ClientInfo,
    tenancy::ResolvedTenant,
};

/// The agency the request is for: its Host, or `X-Tenant` on the API host.
pub async fn tenant(req: &Request, state: &AppState) -> Result<ResolvedTenant, ApiError> {
    tenant_of(state, &request_host(req), req.header("x-tenant")).await
}

/// The agency of `host`, or the one `x_tenant` names on the API host (a
/// WebSocket's `connection_init` names it there, as browsers cannot send
/// headers with the upgrade).
pub async fn tenant_of(state: &AppState, host: &str, x_tenant: Option<&str>) -> Result<ResolvedTenant, ApiError> {
    state.tenants.resolve(host, x_tenant).await
}

/// The request's context: its tenant, and who it acts as. A credential that
/// is refused (expired, revoked, garbage, another agency's) does not end the
/// request: it runs as no one, and every field but signing in answers
/// `UNAUTHENTICATED` (see `RequestContext::credential_refused`), so a client
/// can refresh and retry. A dependency that fails ends it.
pub async fn begin(req: &Request, state: &AppState) -> Result<RequestContext, ApiError> {
    let resolved = tenant(req, state).await?;
    let client = ClientInfo {
        ip: ClientAddr::of(req).map(|ip| ip.to_string()),
        user_agent: req.header("user-agent").map(str::to_owned),
    };
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let mut ctx = RequestContext::new(request_id, resolved, client, &state.db);
    let creds = Credentials { authorization: req.header("authorization"), api_key: req.header("x-api-key") };
    match authenticate(&state.auth, &ctx.resolved, ctx.db().ok().map(|d| d.as_ref()), creds).await {
        Ok(principal) => ctx.principal = principal,
        Err(ApiError::Unauthenticated) => ctx.credential_refused = true,
        Err(e) => return Err(abandon(&ctx, state, e).await),
    }
    // Its rate limits, as whoever it authenticated as: an upload is charged
    // now, before its files stream; any other request with its first
    // operation, in the same round trip (see `rate_limit::admit`).
    if let Err(e) = super::rate_limit::admit(req, &ctx, state).await {
        return Err(abandon(&ctx, state, e).await);
    }
    Ok(ctx)
}

/// Another operation of the same request (a batch): a transaction of its
/// own, acting as the same principal.
pub fn sibling(ctx: &RequestContext, state: &AppState) -> RequestContext {
    let mut next = RequestContext::new(ctx.request_id.clone(), ctx.resolved.clone(), ctx.client.clone(), &state.db);
    next.principal = ctx.principal.clone();
    next.credential_refused = ctx.credential_refused;
    super::rate_limit::share(ctx, &next);
    next
}

/// Ends the request's transaction, committing it when `commit` says so, then
/// settles what its services left behind (staged files, issued links) by
/// whether it committed. A commit whose answer never came may have been
/// applied: that is `OUTCOME_UNKNOWN`, not a retryable failure.
pub async fn end(ctx: &RequestContext, state: &AppState, commit: bool) -> Result<(), ApiError> {
    let finished = ctx.finish(commit).await;
    crate::files::after_request(&state.files, ctx, commit && finished.is_ok()).await;
    crate::persisted::after_request(&state.persisted, ctx, commit && finished.is_ok());
    crate::events::after_request(state.cache.as_ref(), ctx.extension::<crate::events::Outbox>().as_deref(), commit && finished.is_ok()).await;
    finished.map_err(|e| if commit && crate::error::db_unreachable(&e) { ApiError::OutcomeUnknown } else { ApiError::from(e) })
}

/// Rolls the request back because of `err`, and returns `err`.
pub async fn abandon(ctx: &RequestContext, state: &AppState, err: ApiError) -> ApiError {
    if let Err(e) = end(ctx, state, false).await {
        tracing::warn!(error = ?e, "rolling back a refused request");
    }
    err
}
