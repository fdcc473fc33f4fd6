//! Response compression, negotiated: brotli or gzip as the client's
//! `Accept-Encoding` prefers, for text answers (JSON, GraphQL, scripts,
//! styles) of at least `MIN_BYTES`. File downloads stream as stored, and an
//! answer that is already encoded (the playground's precompressed assets)
//! passes as it is. poem's `Compress` does the encoding; this decides when.

use poem::{
    Endpoint, IntoResponse, Request, Response, Result,
    http::{HeaderValue, StatusCode, header},
    web::{Compress, CompressionAlgo, CompressionLevel},
};

/// Smaller answers go as they are: compressing them saves less than it
/// costs.
pub const MIN_BYTES: usize = 1024;

const COMPRESSIBLE: [&str; 7] = [
    "application/json",
    "application/graphql-response+json",
    "text/html",
    "text/css",
    "text/javascript",
    "text/plain",
    "image/svg+xml",
];

/// The encoding the client prefers among those we write.
pub fn negotiate(accept_encoding: Option<&str>) -> Option<CompressionAlgo> {
    let (mut br, mut gzip) = (0.0_f32, 0.0_f32);
    for coding in accept_encoding?.split(',') {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0);
        match name.as_str() {
            "br" => br = br.max(q),
            "gzip" | "x-gzip" => gzip = gzip.max(q),
            "*" => {
                br = br.max(q);
                gzip = gzip.max(q);
            }
            _ => {}
        }
    }
    if br > 0.0 && br >= gzip {
        Some(CompressionAlgo::BR)
    } else if gzip > 0.0 {
        Some(CompressionAlgo::GZIP)
    } else {
        None
    }
}

fn compressible(resp: &Response) -> bool {
    let h = resp.headers();
    let essence = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    !matches!(resp.status(), StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)
        && !h.contains_key(header::CONTENT_ENCODING)
        && !h.get(header::CONTENT_DISPOSITION).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("attachment"))
        && essence.is_some_and(|e| COMPRESSIBLE.contains(&e.as_str()))
}

pub async fn with_compression<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    let algo = negotiate(req.header(header::ACCEPT_ENCODING));
    let mut resp = next.call(req).await?.into_response();
    if !compressible(&resp) {
        return Ok(resp);
    }
    resp.headers_mut().append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let Some(algo) = algo else { return Ok(resp) };
    // Compressible answers are built in memory; this takes no stream.
    let body = resp.take_body().into_bytes().await?;
    let small = body.len() < MIN_BYTES;
    resp.set_body(body);
    if small {
        return Ok(resp);
    }
    let level = match algo {
        CompressionAlgo::BR => CompressionLevel::Precise(4),
        _ => CompressionLevel::Default,
    };
    Ok(Compress::new(resp, algo).with_quality(level).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brotli_unless_gzip_is_preferred() {
        assert!(matches!(negotiate(Some("gzip, deflate, br, zstd")), Some(CompressionAlgo::BR)));
        assert!(matches!(negotiate(Some("gzip")), Some(CompressionAlgo::GZIP)));
        assert!(matches!(negotiate(Some("br;q=0.5, gzip")), Some(CompressionAlgo::GZIP)));
        assert!(negotiate(Some("br;q=0, gzip;q=0")).is_none());
        assert!(negotiate(Some("identity")).is_none());
        assert!(negotiate(None).is_none());
    }
}
