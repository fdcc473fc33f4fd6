//! The GraphiQL playground, built from `playground/` and embedded in the
//! binary: `cargo run` needs no Node, and the page loads nothing from any
//! other origin (its Content-Security-Policy forbids it).

use poem::{
    IntoResponse, Request, Response, handler,
    http::{StatusCode, header},
    web::Path,
};

const INDEX: &str = include_str!("../../../playground/dist/index.html");
const SCRIPT: &[u8] = include_bytes!("../../../playground/dist/playground.js");
const STYLE: &[u8] = include_bytes!("../../../playground/dist/playground.css");

/// An embedded file with its brotli and gzip copies (made by the build) and
/// its validator.
struct Asset {
    content_type: &'static str,
    identity: &'static [u8],
    br: Option<&'static [u8]>,
    gzip: Option<&'static [u8]>,
    /// The first 16 hex digits of the file's SHA-256.
    tag: std::sync::LazyLock<String>,
}

macro_rules! asset {
    ($content_type:expr, $bytes:expr, $br:expr, $gz:expr) => {
        Asset { content_type: $content_type, identity: $bytes, br: $br, gzip: $gz, tag: std::sync::LazyLock::new(|| tag_of($bytes)) }
    };
}

static PAGE: Asset = asset!("text/html; charset=utf-8", INDEX.as_bytes(), None, None);
static SCRIPT_ASSET: Asset = asset!(
    "text/javascript; charset=utf-8",
    SCRIPT,
    Some(include_bytes!("../../../playground/dist/playground.js.br")),
    Some(include_bytes!("../../../playground/dist/playground.js.gz"))
);
static STYLE_ASSET: Asset = asset!(
    "text/css; charset=utf-8",
    STYLE,
    Some(include_bytes!("../../../playground/dist/playground.css.br")),
    Some(include_bytes!("../../../playground/dist/playground.css.gz"))
);

fn tag_of(bytes: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    Sha256::digest(bytes).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Same-origin only. GraphiQL sets inline styles and loads its editor
/// fonts/images as data: URLs.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The asset in the encoding the client prefers among the copies it has,
/// cacheable for five minutes and then revalidated by its `ETag` (a `304`
/// costs no body). Each encoding is a representation with a tag of its own.
fn serve(file: &Asset, req: &Request) -> Response {
    use poem::web::CompressionAlgo;
    let (body, encoding) = match (super::compression::negotiate(req.header(header::ACCEPT_ENCODING)), file.br, file.gzip) {
        (Some(CompressionAlgo::BR), Some(br), _) => (br, Some("br")),
        (Some(_), _, Some(gz)) => (gz, Some("gzip")),
        _ => (file.identity, None),
    };
    let etag = format!("\"{}{}\"", *file.tag, encoding.map(|e| format!("-{e}")).unwrap_or_default());
    let fresh = req
        .header(header::IF_NONE_MATCH)
        .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == etag || t.trim() == "*"));
    let builder = Response::builder()
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .header(header::ETAG, etag)
        .header(header::VARY, "accept-encoding");
    if fresh {
        return builder.status(StatusCode::NOT_MODIFIED).finish();
    }
    let builder = builder.header(header::CONTENT_TYPE, file.content_type);
    match encoding {
        Some(e) => builder.header(header::CONTENT_ENCODING, e).body(body),
        None => builder.body(body),
    }
}

#[handler]
pub async fn index(req: &Request) -> Response {
    serve(&PAGE, req)
}

#[handler]
pub async fn asset(req: &Request, Path(file): Path<String>) -> Response {
    match file.as_str() {
        "playground.js" => serve(&SCRIPT_ASSET, req),
        "playground.css" => serve(&STYLE_ASSET, req),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The embedded files, for tests that check them.
pub fn embedded() -> [(&'static str, &'static [u8]); 3] {
    [("index.html", INDEX.as_bytes()), ("playground.js", SCRIPT), ("playground.css", STYLE)]
}
