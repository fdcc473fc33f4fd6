//! Headers every answer carries unless its route set its own: no content
//! sniffing, no framing, no referrer, and HSTS when the deployment asks for
//! it (`server.hsts_max_age_secs`, for TLS terminated in front of us).

use poem::{
    Endpoint, IntoResponse, Request, Response, Result,
    http::{HeaderName, HeaderValue, header},
};

#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl SecurityHeaders {
    pub fn new(hsts_max_age_secs: u64) -> Self {
        let mut headers = vec![
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ];
        if hsts_max_age_secs > 0
            && let Ok(v) = HeaderValue::from_str(&format!("max-age={hsts_max_age_secs}; includeSubDomains"))
        {
            headers.push((header::STRICT_TRANSPORT_SECURITY, v));
        }
        Self { headers }
    }
}

pub async fn with_security_headers<E: Endpoint>(next: E, req: Request, policy: std::sync::Arc<SecurityHeaders>) -> Result<Response> {
    let mut resp = next.call(req).await?.into_response();
    for (name, value) in &policy.headers {
        if !resp.headers().contains_key(name) {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(resp)
}
