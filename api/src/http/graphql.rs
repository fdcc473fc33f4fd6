//! `GET` and `POST /graphql`: resolve the tenant, build the request context,
//! execute, then commit or roll back the request's transaction before
//! answering.

use std::sync::Arc;

use async_graphql::{
    http::MultipartOptions,
    parser::types::OperationType,
};
use async_graphql_poem::GraphQLResponse;
use poem::{
    Body, IntoResponse, Request, Response, handler,
    http::{Method, StatusCode},
    web::{Data, Json},
};

use super::RequestId;
use crate::{
    auth::{
        Principal, Scope,
        authenticate::{Credentials, authenticate},
    },
    error::ApiError,
    graphql::AppSchema,
    state::AppState,
    store::sessions::ClientInfo,
    request::RequestContext,
};

pub fn error_response(err: ApiError) -> Response {
    let status = err.status();
    let retry_after = err.retry_after();
    let mut resp = Json(err.into_response_body()).into_response();
    resp.set_status(status);
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert("www-authenticate", poem::http::HeaderValue::from_static("Bearer"));
    }
    if let Some(secs) = retry_after {
        resp.headers_mut().insert("retry-after", poem::http::HeaderValue::from(secs));
    }
    resp
}

/// A response that failed because a dependency is unavailable, and so
/// changed nothing, is answered `503` with `Retry-After` (the GraphQL body
/// unchanged), so that clients and proxies retry it instead of reading it
/// as a permanent failure.
fn unavailable_status(response: &async_graphql::Response, committed: bool) -> Option<u64> {
    let unavailable = response.errors.iter().any(|e| {
        e.extensions.as_ref().and_then(|x| x.get("code")).is_some_and(|c| {
            *c == async_graphql::Value::from("SERVICE_UNAVAILABLE") || *c == async_graphql::Value::from("OUTCOME_UNKNOWN")
        })
    });
    (unavailable && !committed).then_some(crate::error::UNAVAILABLE_RETRY_AFTER)
}

#[handler]
pub async fn graphql(req: &Request, Data(state): Data<&AppState>, Data(schema): Data<&AppSchema>, body: Body) -> Response {
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let resolved = match state.tenants.resolve(&super::request_host(req), req.header("x-tenant")).await {
        Ok(r) => r,
        Err(e) => return error_response(e),
    };
    let client = ClientInfo {
        ip: super::ClientAddr::of(req).map(|ip| ip.to_string()),
        user_agent: req.header("user-agent").map(str::to_owned),
    };
    let mut ctx = RequestContext::new(request_id, resolved, client, &state.db);
    let creds = Credentials { authorization: req.header("authorization"), api_key: req.header("x-api-key") };
    match authenticate(&state.auth, &ctx.resolved, ctx.db().ok().map(|d| d.as_ref()), creds).await {
        Ok(principal) => ctx.principal = principal,
        Err(e) => {
            if let Err(db_err) = ctx.finish(false).await {
                tracing::warn!(error = ?db_err, "rolling back after a refused credential");
            }
            return error_response(e);
        }
    }
    // The body is read only now: an unknown agency or a refused credential
    // never gets to spool a large upload.
    let gql = match read_request(req, body, state, &ctx).await {
        Ok(r) => r,
        Err(e) => {
            if let Err(db_err) = ctx.finish(false).await {
                tracing::warn!(error = ?db_err, "rolling back after an unreadable request");
            }
            return error_response(e);
        }
    };
    if req.method() == Method::GET && !is_query(&gql) {
        if let Err(db_err) = ctx.finish(false).await {
            tracing::warn!(error = ?db_err, "rolling back after a refused GET");
        }
        return error_response(ApiError::MethodNotAllowed(
            "only queries may be sent with GET; send mutations with POST",
        ));
    }
    // Queries stay readers: on SQLite they never wait for a writer.
    if !is_query(&gql)
        && let Err(e) = ctx.begin_writing().await
    {
        return error_response(e);
    }
    let ctx = Arc::new(ctx);
    let mut response = schema.execute(crate::graphql::prepare(gql, ctx.clone(), state.clone())).await;
    let mut commit = response.errors.is_empty();
    if let Err(e) = ctx.finish(commit).await {
        // A COMMIT whose answer never came may have been applied.
        let err = if commit && crate::error::db_unreachable(&e) { ApiError::OutcomeUnknown } else { ApiError::from(e) };
        commit = false;
        let err: async_graphql::Error = err.into();
        response = async_graphql::Response::from_errors(vec![err.into_server_error(Default::default())]);
    }
    crate::files::after_request(&state.files, &ctx, response.errors.is_empty()).await;
    let retry_after = unavailable_status(&response, commit);
    let mut resp = GraphQLResponse(response).into_response();
    if let Some(secs) = retry_after {
        resp.set_status(StatusCode::SERVICE_UNAVAILABLE);
        resp.headers_mut().insert("retry-after", poem::http::HeaderValue::from(secs));
    }
    if resp.status() == StatusCode::OK {
        resp.headers_mut().insert("cache-control", poem::http::HeaderValue::from_static("no-store"));
    }
    // Development only: how many SQL statements the request ran through its
    // tenant handle (tests use it to prove batching; production hides it).
    if !state.settings.is_production()
        && let Ok(db) = ctx.db()
    {
        resp.headers_mut().insert("x-aggios-sql-statements", poem::http::HeaderValue::from(db.statement_count()));
    }
    resp
}

/// The GraphQL request of a GET (query string) or POST (JSON, or the
/// multipart request spec with files spooled to temporary files), within the
/// size limits of `storage.*`.
async fn read_request(
    req: &Request,
    body: Body,
    state: &AppState,
    ctx: &RequestContext,
) -> Result<async_graphql::Request, ApiError> {
    if req.method() == Method::GET {
        return async_graphql::http::parse_query_string(req.uri().query().unwrap_or_default())
            .map_err(|e| ApiError::BadUserInput { field: "query", message: e.to_string() });
    }
    let limits = &state.settings.storage;
    let max = limits.max_request_bytes;
    let declared = req.header("content-length").and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(ApiError::PayloadTooLarge(format!("the request has {} bytes and the limit is {max}", declared.unwrap_or(0))));
    }
    let content_type = req.header("content-type").unwrap_or_default();
    if content_type.trim_start().to_ascii_lowercase().starts_with("multipart/") {
        // Files go to storage as they arrive, so only a caller who may
        // write documents gets that far.
        let tenant = ctx.tenant()?.id;
        match &ctx.principal {
            Principal::Anonymous => return Err(ApiError::Unauthenticated),
            Principal::User(_) => {}
            Principal::ApiKey(k) if k.scope == Scope::ReadWrite => {}
            _ => return Err(ApiError::Forbidden("uploading needs a member of the agency or a read-write API key")),
        }
        // What authentication wrote commits now, so no transaction (and no
        // pooled connection) stays open while the files move.
        ctx.db()?.finish(true).await.map_err(ApiError::from)?;
        return super::multipart::read(content_type, declared, body, state, ctx, tenant).await;
    }
    // A plain GraphQL body is read into memory: it gets a small limit of its own.
    let max = max.min(MAX_JSON_BODY);
    if declared.is_some_and(|n| n > max) {
        return Err(ApiError::PayloadTooLarge(format!("a GraphQL request without files is limited to {max} bytes")));
    }
    let tripped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = Limited { inner: body.into_async_read(), left: max, tripped: tripped.clone() };
    use tokio_util::compat::TokioAsyncReadCompatExt as _;
    let parsed = async_graphql::http::receive_body(Some(content_type), reader.compat(), MultipartOptions::default()).await;
    let request = match parsed {
        Ok(r) => r,
        Err(_) if tripped.load(std::sync::atomic::Ordering::Relaxed) => {
            return Err(ApiError::PayloadTooLarge(format!("the request is larger than the limit of {max} bytes")));
        }
        Err(e) => return Err(ApiError::BadUserInput { field: "request", message: e.to_string() }),
    };
    Ok(request)
}

/// The largest GraphQL request without files (JSON).
const MAX_JSON_BODY: u64 = 1024 * 1024;

/// A body reader that fails once more than `left` bytes arrive.
struct Limited<R> {
    inner: R,
    left: u64,
    tripped: Arc<std::sync::atomic::AtomicBool>,
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
                self.tripped.store(true, std::sync::atomic::Ordering::Relaxed);
                return std::task::Poll::Ready(Err(std::io::Error::other("request body over the limit")));
            }
            self.left -= n;
        }
        polled
    }
}

/// Whether the operation the request would run is a query. A document that
/// does not parse counts as one: execution answers with the syntax error.
fn is_query(req: &async_graphql::Request) -> bool {
    let Ok(doc) = async_graphql::parser::parse_query(&req.query) else {
        return true;
    };
    let selected = match &req.operation_name {
        Some(name) => doc.operations.iter().find(|(n, _)| n.map(|n| n.as_str()) == Some(name.as_str())).map(|(_, op)| op),
        None => doc.operations.iter().next().map(|(_, op)| op),
    };
    selected.is_none_or(|op| op.node.ty == OperationType::Query)
}
