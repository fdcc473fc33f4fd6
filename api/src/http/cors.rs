//! CORS: which web pages may call the API from a browser. Allowed are the
//! deployment's origins (`server.cors_allowed_origins`) and, automatically,
//! each agency's own: its subdomain and its custom domain over https. An
//! agency's origin is granted on the API host and on its own host, never on
//! another agency's. Any other origin gets no grant (its preflight is
//! refused), so the browser keeps the answer from the page.
//!
//! No credentials mode: Aggios reads no cookies; clients send a Bearer token
//! or an API key, which these headers allow.

use std::{collections::HashSet, sync::Arc};

use poem::{
    Endpoint, IntoResponse, Request, Response, Result,
    http::{HeaderValue, Method, StatusCode, header},
};

use super::request_host;
use crate::{error::ApiError, tenancy::TenantResolver};

/// Request headers a page may send.
const ALLOW_HEADERS: &str = "authorization, content-type, x-api-key, x-tenant, x-api-version, \
    apollo-require-preflight, x-apollo-operation-name, apollo-query-plan-experimental, x-request-id";
/// Response headers a page may read.
const EXPOSE_HEADERS: &str = "x-request-id, x-api-version, retry-after, ratelimit, ratelimit-policy";
const ALLOW_METHODS: &str = "GET, POST, PUT, OPTIONS";
/// How long a browser may reuse a preflight (Chromium keeps at most 2 h).
const MAX_AGE_SECS: &str = "600";

#[derive(Debug)]
pub struct Cors {
    allowed: HashSet<String>,
    tenants: TenantResolver,
}

impl Cors {
    pub fn new(allowed: &[String], tenants: TenantResolver) -> Self {
        Self { allowed: allowed.iter().cloned().collect(), tenants }
    }

    /// Whether pages of `origin` may call this request's host.
    async fn allows(&self, origin: &str, req: &Request) -> bool {
        if self.allowed.contains(origin) {
            return true;
        }
        // An agency's own origin: https, the default port, a host that is
        // one of its names.
        let Some(host) = origin.strip_prefix("https://").filter(|h| !h.contains([':', '/'])) else {
            return false;
        };
        let Ok(Some(agency)) = self.tenants.resolve(host, None).await.map(|r| r.tenant) else {
            return false;
        };
        match self.tenants.resolve(&request_host(req), None).await {
            Ok(target) => target.tenant.is_none_or(|t| t.id == agency.id),
            Err(_) => false,
        }
    }
}

/// Whether the request's `Origin` may call this host, as decided here for
/// every request: what a WebSocket handshake, which browsers send from any
/// page without a preflight, checks before it accepts.
#[derive(Debug, Clone, Copy)]
pub struct OriginVerdict(pub bool);

fn vary(resp: &mut Response, on: &'static str) {
    resp.headers_mut().append(header::VARY, HeaderValue::from_static(on));
}

pub async fn with_cors<E: Endpoint>(next: E, req: Request, cors: Arc<Cors>) -> Result<Response> {
    let origin = req.header(header::ORIGIN).and_then(|o| HeaderValue::from_str(o).ok());
    let preflight = req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let allowed = match &origin {
        Some(o) => cors.allows(o.to_str().unwrap_or_default(), &req).await,
        None => false,
    };
    if preflight {
        let mut resp = if allowed {
            let mut resp = Response::builder().status(StatusCode::NO_CONTENT).finish();
            let h = resp.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE_SECS));
            resp
        } else {
            super::response::error_for(ApiError::OriginNotAllowed, &req)
        };
        grant(&mut resp, origin.filter(|_| allowed));
        vary(&mut resp, "origin, access-control-request-method, access-control-request-headers");
        return Ok(resp);
    }
    let mut req = req;
    req.extensions_mut().insert(OriginVerdict(allowed));
    let mut resp = next.call(req).await?.into_response();
    grant(&mut resp, origin.filter(|_| allowed));
    vary(&mut resp, "origin");
    Ok(resp)
}

fn grant(resp: &mut Response, origin: Option<HeaderValue>) {
    if let Some(origin) = origin {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    }
}
