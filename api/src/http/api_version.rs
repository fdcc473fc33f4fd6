//! `X-API-Version`: absent or `v1` is served (and echoed on the answer, so a
//! client can see what it got); anything else is refused with
//! `UNSUPPORTED_API_VERSION` before the request does anything, so that a
//! client written for a later version never silently gets this one.

use poem::{Endpoint, IntoResponse, Request, Response, Result, http::HeaderValue};

pub const HEADER: &str = "x-api-version";
pub const CURRENT: &str = "v1";

pub async fn with_api_version<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    if let Some(sent) = req.header(HEADER).map(str::trim)
        && sent != CURRENT
    {
        let sent: String = sent.chars().take(32).collect();
        return Ok(super::response::error_for(crate::error::ApiError::UnsupportedApiVersion(sent), &req));
    }
    let mut resp = next.call(req).await?.into_response();
    resp.headers_mut().insert(HEADER, HeaderValue::from_static(CURRENT));
    Ok(resp)
}
