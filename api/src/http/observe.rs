//! What each request leaves behind once answered: one log line (`served`,
//! with its status, time, route, operation and outcome code) and its
//! metrics. Routes say what they served by putting an [`Outcome`] in the
//! response's extensions; an answer without one is judged by its status.
//!
//! While the server drains before a stop, every HTTP/1 answer also says
//! `Connection: close`: a proxy's pooled connection then ends after its
//! request, cleanly, rather than being closed under the next one it sends
//! when the listener stops.

use std::{sync::Arc, time::Instant};

use poem::{
    Endpoint, IntoResponse as _, Request, Response, Result,
    http::{HeaderValue, Version, header},
};
use tokio_util::sync::CancellationToken;

use crate::tenancy::{HostKind, classify_host};

/// What a route served: its GraphQL operation (if any; a batch is labelled
/// `batch`) and the stable code of its outcome (`OK`, or the first error's).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub operation: Option<String>,
    pub batch: bool,
    pub code: String,
}

impl Outcome {
    /// Attaches the outcome to `resp`.
    pub fn mark(self, resp: &mut Response) {
        resp.extensions_mut().insert(self);
    }
}

pub async fn with_observation<E: Endpoint>(next: E, req: Request, base_domain: Arc<str>, draining: CancellationToken) -> Result<Response> {
    let started = Instant::now();
    let _in_flight = crate::metrics::InFlight::enter();
    let route = route_of(&req);
    // Classified (a lower-cased copy of the Host) only for the metrics.
    let host = crate::metrics::enabled().then(|| host_class(&super::request_host(&req), &base_domain));
    let http1 = req.version() < Version::HTTP_2;
    let mut resp = match next.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    if http1 && draining.is_cancelled() {
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let took = started.elapsed();
    let outcome = resp.extensions_mut().remove::<Outcome>();
    let code = outcome.as_ref().map_or_else(|| code_of_status(resp.status()), |o| o.code.clone());
    let batch = outcome.as_ref().is_some_and(|o| o.batch);
    let operation = if batch { Some("batch".to_owned()) } else { outcome.and_then(|o| o.operation) };
    tracing::info!(
        status = resp.status().as_u16(),
        elapsed_ms = took.as_secs_f64() * 1e3,
        route,
        operation = operation.as_deref(),
        code = %code,
        "served"
    );
    if let Some(host) = host {
        let label = match route {
            "graphql" if batch => "batch".to_owned(),
            "graphql" => crate::metrics::operation_label(operation.as_deref()),
            _ => "none".to_owned(),
        };
        crate::metrics::request(route, label, code, host, took);
    }
    Ok(resp)
}

/// The route, as a fixed label.
fn route_of(req: &Request) -> &'static str {
    let path = req.uri().path();
    if path == "/graphql" {
        if super::ws::is_upgrade(req) { "graphql_ws" } else { "graphql" }
    } else if path.starts_with("/files/") {
        "files"
    } else if path.starts_with("/playground") {
        "playground"
    } else if path == "/healthz" || path == "/readyz" {
        "health"
    } else {
        "other"
    }
}

/// Which kind of host the request named: an agency's subdomain, a custom
/// domain, the general API host, or none that could be.
fn host_class(host: &str, base_domain: &str) -> &'static str {
    match classify_host(host, base_domain) {
        HostKind::Subdomain(_) => "agency",
        HostKind::CustomDomain(_) => "custom_domain",
        HostKind::Api => "api",
        HostKind::Invalid => "invalid",
    }
}

/// An answer that named no outcome: `OK` for a success, else by status.
fn code_of_status(status: poem::http::StatusCode) -> String {
    match status.as_u16() {
        100..=399 => "OK".into(),
        404 => "NOT_FOUND".into(),
        405 => "METHOD_NOT_ALLOWED".into(),
        n => format!("HTTP_{n}"),
    }
}
