//! The request id: taken from `x-request-id` when it is a sane token,
//! generated otherwise; returned on the response and attached to the span
//! around the request, so every log line of the request carries it (the
//! request's own line, `served`, is `observe`'s). When traces are exported,
//! that span joins the caller's W3C trace context (`traceparent`); nothing
//! about the trace is sent back.

use poem::{Endpoint, IntoResponse, Request, Response, Result, http::HeaderValue};
use tracing::Instrument as _;
use uuid::Uuid;

pub const HEADER: &str = "x-request-id";

/// The request's id, in the request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn accept(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub async fn with_request_id<E: Endpoint>(next: E, mut req: Request) -> Result<Response> {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| accept(v))
        .map_or_else(|| Uuid::now_v7().to_string(), str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    crate::telemetry::continue_trace(&span, req.headers());
    async move {
        let mut resp = match next.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        crate::telemetry::record_status(&tracing::Span::current(), resp.status().as_u16());
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert(HEADER, v);
        }
        Ok(resp)
    }
    .instrument(span)
    .await
}
