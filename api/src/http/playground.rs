//! The GraphiQL playground, built from `playground/` and embedded in the
//! binary: `cargo run` needs no Node, and the page loads nothing from any
//! other origin (its Content-Security-Policy forbids it).

use poem::{
    IntoResponse, Response, handler,
    http::{StatusCode, header},
    web::Path,
};

const INDEX: &str = include_str!("../../../playground/dist/index.html");
const SCRIPT: &[u8] = include_bytes!("../../../playground/dist/playground.js");
const STYLE: &[u8] = include_bytes!("../../../playground/dist/playground.css");

/// Same-origin only. GraphiQL sets inline styles and loads its editor
/// fonts/images as data: URLs.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn page(body: impl Into<poem::Body>, content_type: &'static str) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .body(body)
}

#[handler]
pub async fn index() -> Response {
    page(INDEX, "text/html; charset=utf-8")
}

#[handler]
pub async fn asset(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "playground.js" => page(SCRIPT, "text/javascript; charset=utf-8"),
        "playground.css" => page(STYLE, "text/css; charset=utf-8"),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The embedded files, for tests that check them.
pub fn embedded() -> [(&'static str, &'static [u8]); 3] {
    [("index.html", INDEX.as_bytes()), ("playground.js", SCRIPT), ("playground.css", STYLE)]
}
