//! Reading a GraphQL request off HTTP: a GET's query string, a POST's JSON
//! body (one operation, or a batch as Apollo's `BatchHttpLink` sends), or
//! the multipart upload format with files streamed to storage. Other content
//! types are refused before the body is read, and every body has a limit.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use async_graphql::BatchRequest;
use poem::{Body, Request, http::Method};
use tokio::io::AsyncReadExt as _;

use crate::{
    auth::{Principal, Scope},
    error::{ApiError, Limit},
    request::RequestContext,
    state::AppState,
};

/// The largest GraphQL request without files (JSON).
const MAX_JSON_BODY: u64 = 1024 * 1024;

/// What a POST body is, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Multipart,
}

/// The kind of a POST body, or `415` naming what is accepted. Checked before
/// anything else looks at the request.
pub fn body_kind(req: &Request) -> Result<BodyKind, ApiError> {
    let refuse = |what: String| {
        ApiError::UnsupportedMediaType(format!(
            "{what}: send GraphQL requests as `application/json` (or `multipart/form-data` with files, per the GraphQL multipart request spec)"
        ))
    };
    let Some(value) = req.header("content-type") else {
        return Err(refuse("the request has no Content-Type".into()));
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let charset = parts.filter_map(|p| p.trim().split_once('=')).find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"));
    if let Some((_, cs)) = charset
        && !cs.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
    {
        return Err(refuse(format!("the charset `{}` is not UTF-8", cs.trim())));
    }
    match essence.as_str() {
        "application/json" => Ok(BodyKind::Json),
        "multipart/form-data" => Ok(BodyKind::Multipart),
        other => Err(refuse(format!("`{other}` is not a GraphQL request format"))),
    }
}

/// The operations of the request, within the size limits of `storage.*` and
/// `server.max_batch_operations`.
pub async fn read(req: &Request, body: Body, state: &AppState, ctx: &RequestContext) -> Result<BatchRequest, ApiError> {
    let batch = read_any(req, body, state, ctx).await?;
    let ops = match &batch {
        BatchRequest::Single(op) => std::slice::from_ref(op),
        BatchRequest::Batch(ops) => ops.as_slice(),
    };
    if ops.iter().any(|op| op.query.trim().is_empty() && !super::documents::sends_id(op)) {
        return Err(ApiError::BadUserInput { field: "query", message: "the request has no `query`: send the GraphQL document as a string".into() });
    }
    Ok(batch)
}

async fn read_any(req: &Request, body: Body, state: &AppState, ctx: &RequestContext) -> Result<BatchRequest, ApiError> {
    if req.method() == Method::GET {
        let query = req.uri().query().unwrap_or_default();
        let mut op = async_graphql::http::parse_query_string(query).map_err(|e| ApiError::BadUserInput { field: "query", message: e.to_string() })?;
        super::documents::read_ids_from_query_string(query, &mut op);
        return Ok(BatchRequest::Single(op));
    }
    let max = state.settings.storage.max_request_bytes;
    let declared = req.header("content-length").and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > max) {
        return Err(ApiError::PayloadTooLarge(format!("the request has {n} bytes and the limit is {max}")));
    }
    if body_kind(req)? == BodyKind::Multipart {
        return read_multipart(req, body, state, ctx, declared).await.map(BatchRequest::Single);
    }
    // A plain GraphQL body is read into memory: it gets a small limit of its own.
    let max = max.min(MAX_JSON_BODY);
    if declared.is_some_and(|n| n > max) {
        return Err(ApiError::PayloadTooLarge(format!("a GraphQL request without files is limited to {max} bytes")));
    }
    let tripped = Arc::new(AtomicBool::new(false));
    let mut reader = Limited { inner: body.into_async_read(), left: max, tripped: tripped.clone() };
    let mut bytes = Vec::with_capacity(usize::try_from(declared.unwrap_or(0)).unwrap_or(0).min(64 * 1024));
    if let Err(e) = reader.read_to_end(&mut bytes).await {
        if tripped.load(Ordering::Relaxed) {
            return Err(ApiError::PayloadTooLarge(format!("the request is larger than the limit of {max} bytes")));
        }
        return Err(ApiError::BadUserInput { field: "request", message: format!("the body could not be read: {e}") });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadUserInput {
            field: "request",
            message: "the body is empty: send a JSON object with a `query` (and optionally `variables`, `operationName`)".into(),
        });
    }
    let mut batch: BatchRequest = serde_json::from_slice(&bytes).map_err(|e| ApiError::BadUserInput {
        field: "request",
        message: format!("the body is not a GraphQL request (a JSON object with a string `query`, or an array of them): {e}"),
    })?;
    super::documents::read_ids_from_json(&bytes, &mut batch);
    let limit = state.settings.server.max_batch_operations;
    match &batch {
        BatchRequest::Batch(ops) if ops.is_empty() => {
            Err(ApiError::BadUserInput { field: "request", message: "the batch is empty: send at least one operation".into() })
        }
        BatchRequest::Batch(ops) if ops.len() > limit => {
            Err(ApiError::OverLimit { limit: Limit::BatchOperations, found: ops.len(), max: limit })
        }
        _ => Ok(batch),
    }
}

/// Files go to storage as they arrive, so only a caller who may write
/// documents gets that far; what authentication wrote commits first, so no
/// transaction (and no pooled connection) stays open while the files move.
async fn read_multipart(
    req: &Request,
    body: Body,
    state: &AppState,
    ctx: &RequestContext,
    declared: Option<u64>,
) -> Result<async_graphql::Request, ApiError> {
    let tenant = ctx.tenant()?.id;
    if ctx.credential_refused {
        return Err(ApiError::CredentialRefused);
    }
    match &ctx.principal {
        Principal::Anonymous => return Err(ApiError::Unauthenticated),
        Principal::User(_) => {}
        Principal::ApiKey(k) if k.scope == Scope::ReadWrite => {}
        _ => return Err(ApiError::Forbidden("uploading needs a member of the agency or a read-write API key")),
    }
    ctx.db()?.finish(true).await.map_err(ApiError::from)?;
    let content_type = req.header("content-type").unwrap_or_default();
    super::multipart::read(content_type, declared, body, state, ctx, tenant).await
}

/// A body reader that fails once more than `left` bytes arrive.
struct Limited<R> {
    inner: R,
    left: u64,
    tripped: Arc<AtomicBool>,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Limited<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &polled {
            let n = (buf.filled().len() - before) as u64;
            if n > self.left {
                self.tripped.store(true, Ordering::Relaxed);
                buf.set_filled(before);
                return std::task::Poll::Ready(Err(std::io::Error::other("request body over the limit")));
            }
            self.left -= n;
        }
        polled
    }
}
