//! CSRF prevention, as Apollo Server does it. Aggios takes no cookies, so a
//! forged request carries no one's credentials; but a web page can still
//! make a visitor's browser send a request that needs no preflight (a GET,
//! or a POST with a form or text body) and run an operation as anonymous,
//! from the visitor's address. Such a request runs only if it also carries a
//! header that no simple request can: then the browser has asked first, and
//! CORS decided.

use poem::{Request, http::Method};

use crate::error::ApiError;

/// Headers a browser sends only after a preflight; any non-empty value.
const PREFLIGHT_HEADERS: [&str; 2] = ["apollo-require-preflight", "x-apollo-operation-name"];

/// Content types a browser sends cross-site without a preflight.
const SIMPLE_CONTENT_TYPES: [&str; 3] = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"];

pub fn check(req: &Request) -> Result<(), ApiError> {
    let content_type = req.header("content-type").map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    let simple = req.method() == Method::GET
        || req.method() == Method::HEAD
        || content_type.as_deref().is_none_or(|ct| SIMPLE_CONTENT_TYPES.contains(&ct));
    let forced = PREFLIGHT_HEADERS.iter().any(|h| req.header(h).is_some_and(|v| !v.trim().is_empty()));
    if simple && !forced { Err(ApiError::CsrfPrevented) } else { Ok(()) }
}
