//! Rate limits at the edge (see `rate_limits`): the pipeline step that
//! charges a request to its budgets once it is authenticated and before its
//! body is read, and the RateLimit header fields on the answer, as
//! draft-ietf-httpapi-ratelimit-headers-11 writes them:
//!
//! ```text
//! RateLimit-Policy: "user-requests";q=600;w=60, "agency-requests";q=12000;w=60
//! RateLimit: "agency-requests";r=1180;t=55
//! ```
//!
//! `RateLimit-Policy` lists every budget the request was checked against;
//! `RateLimit` gives the one closest to refusing: what is left of it (`r`)
//! and the seconds until it is whole again (`t`). On a refusal `r` is what
//! is left, too little for the request, and `t` equals `Retry-After`: when
//! the request fits. Budgets of query cost say so with
//! `aggios-unit="complexity"` (the draft's units are requests and bytes).

use poem::{
    Endpoint, IntoResponse, Request, Response, Result,
    http::{HeaderMap, HeaderValue},
};

use crate::{
    error::ApiError,
    rate_limits::{Budget, RateReport, Stage, Unit},
    request::RequestContext,
    state::AppState,
};

/// Gives the request a report for its checks to fill, and writes the
/// header fields from it onto whatever the answer is, refusals included.
pub async fn with_headers<E: Endpoint>(next: E, mut req: Request) -> Result<Response> {
    let report = RateReport::default();
    req.extensions_mut().insert(report.clone());
    let mut resp = next.call(req).await?.into_response();
    write(&report, resp.headers_mut());
    Ok(resp)
}

/// The pipeline step: the request's budgets (by address, user, key, agency)
/// are charged one request, or it is refused with `429 RATE_LIMITED`. An
/// upload is charged now, before its files stream; any other request's
/// charge travels with its first operation's, one round trip for both (its
/// body is at most 1 MiB), and `settle` makes it if no operation did.
pub async fn admit(req: &Request, ctx: &RequestContext, state: &AppState) -> Result<(), ApiError> {
    let Some(report) = req.extensions().get::<RateReport>().cloned() else {
        return state.rate_limits.check(ctx, Stage::Request).await;
    };
    ctx.extension_or_insert_with(|| report.clone());
    if req.method() == poem::http::Method::POST && matches!(super::graphql_body::body_kind(req), Ok(super::graphql_body::BodyKind::Multipart)) {
        return state.rate_limits.check(ctx, Stage::Request).await;
    }
    report.defer_request();
    Ok(())
}

/// The request's own charge, if no operation made it.
pub async fn settle(ctx: &RequestContext, state: &AppState) {
    state.rate_limits.settle_request(ctx).await;
}

/// Another operation of the same request (a batch) reports into its answer.
pub fn share(from: &RequestContext, to: &RequestContext) {
    if let Some(report) = from.extension::<RateReport>() {
        to.extension_or_insert_with(|| RateReport::clone(&report));
    }
}

fn policy(b: &Budget) -> String {
    let unit = match b.unit {
        Unit::Requests => "",
        Unit::Complexity => ";aggios-unit=\"complexity\"",
    };
    format!("\"{}\";q={};w={}{unit}", b.name, b.quota, b.window_secs)
}

fn write(report: &RateReport, headers: &mut HeaderMap) {
    let Some(tightest) = report.tightest() else { return };
    let policies = report.policies().iter().map(policy).collect::<Vec<_>>().join(", ");
    let limit = format!("\"{}\";r={};t={}", tightest.budget.name, tightest.remaining, tightest.reset_secs);
    // Budget names are ours and plain ASCII: these never fail.
    if let (Ok(policies), Ok(limit)) = (HeaderValue::from_str(&policies), HeaderValue::from_str(&limit)) {
        headers.insert("ratelimit-policy", policies);
        headers.insert("ratelimit", limit);
    }
}
