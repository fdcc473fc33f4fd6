//! `GET` and `POST /graphql`: GraphQL over HTTP. The request goes through
//! the pipeline's steps (CSRF, tenant, authentication), each operation runs
//! in a transaction of its own that commits or rolls back before the answer,
//! and the answer follows the media type the client accepts.

use std::sync::Arc;

use async_graphql::{BatchRequest, Value, parser::types::OperationType};

use poem::{
    Body, FromRequest as _, IntoResponse as _, Request, Response, handler,
    http::{HeaderValue, Method, StatusCode, header},
    web::{
        Data,
        websocket::{WebSocket, WebSocketConfig},
    },
};

use super::{
    csrf, documents, graphql_body,
    live::Live,
    observe::Outcome,
    pipeline,
    response::{self, Media},
    ws,
};
use crate::{error::ApiError, graphql::AppSchema, request::RequestContext, state::AppState};

#[handler]
pub async fn graphql(req: &Request, Data(state): Data<&AppState>, Data(schema): Data<&AppSchema>, Data(live): Data<&Live>, body: Body) -> Response {
    let media = Media::of(req);
    if req.method() == Method::GET && ws::is_upgrade(req) {
        return subscribe(req, live, media).await;
    }
    match serve(req, state, schema, body, media).await {
        Ok(resp) => resp,
        Err(e) => {
            // A persisted query's miss is a 200 a cache must not keep.
            let mut resp = response::error(e, media);
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
    }
}

/// A WebSocket for subscriptions (see `ws`); an unknown agency's host is
/// refused before the upgrade.
async fn subscribe(req: &Request, live: &Live, media: Media) -> Response {
    let handshake = match ws::handshake(req, live).await {
        Ok(h) => h,
        Err(e) => return response::error(e, media),
    };
    let socket = match WebSocket::from_request_without_body(req).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let max = live.settings().max_message_bytes;
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(max);
    config.max_frame_size = Some(max);
    // tungstenite zero-fills its whole read buffer (128 KiB by default),
    // so each socket's costs that much memory: 1 KiB holds a protocol
    // message, and the buffer grows for a larger one. Writes are bounded by
    // the connection's queue.
    config.read_buffer_size = 1024;
    config.max_write_buffer_size = 4 * 1024 * 1024;
    let live = live.clone();
    socket.protocols([ws::PROTOCOL]).config(config).on_upgrade(move |s| ws::serve(live, handshake, s)).into_response()
}

async fn serve(req: &Request, state: &AppState, schema: &AppSchema, body: Body, media: Media) -> Result<Response, ApiError> {
    csrf::check(req)?;
    if req.method() == Method::POST {
        graphql_body::body_kind(req)?;
    }
    let ctx = Arc::new(pipeline::begin(req, state).await?);
    let answered = operations(req, state, schema, body, media, &ctx).await;
    // The request's own rate-limit charge, if no operation carried it.
    super::rate_limit::settle(&ctx, state).await;
    answered
}

/// The request's operations, read, run and answered.
async fn operations(
    req: &Request,
    state: &AppState,
    schema: &AppSchema,
    body: Body,
    media: Media,
    ctx: &Arc<RequestContext>,
) -> Result<Response, ApiError> {
    // The body is read only now: an unknown agency never gets to spool a
    // large upload.
    let batch = match graphql_body::read(req, body, state, ctx).await {
        Ok(batch) => batch,
        Err(e) => return Err(pipeline::abandon(ctx, state, e).await),
    };
    let get = req.method() == Method::GET;
    let mut resp = match batch {
        BatchRequest::Single(op) => {
            let done = run(schema, state, ctx.clone(), op, get).await?;
            let mut resp = answer(&done, media);
            Outcome { operation: done.operation.clone(), batch: false, code: outcome_code(&done) }.mark(&mut resp);
            // Development only: how many SQL statements the request ran
            // (tests use it to prove batching; production hides it).
            if !state.settings.is_production()
                && let Some(n) = done.statements
            {
                resp.headers_mut().insert("x-aggios-sql-statements", HeaderValue::from(n));
                let planned = ctx.extension::<crate::graphql::PlannedReads>().map_or(0, |p| p.0.load(std::sync::atomic::Ordering::Relaxed));
                resp.headers_mut().insert("x-aggios-planned-reads", HeaderValue::from(planned));
            }
            resp
        }
        BatchRequest::Batch(ops) => {
            // One transaction per operation, as if each had come alone:
            // one failing rolls back only itself.
            let first = ctx.clone();
            let mut done = Vec::with_capacity(ops.len());
            for (i, op) in ops.into_iter().enumerate() {
                let ctx = if i == 0 { first.clone() } else { Arc::new(pipeline::sibling(&first, state)) };
                done.push(match run(schema, state, ctx, op, get).await {
                    Ok(d) => d,
                    Err(e) => Done::failed(e),
                });
            }
            let mut resp = answer_batch(&done);
            let code = done.iter().map(outcome_code).find(|c| c != "OK").unwrap_or_else(|| "OK".into());
            Outcome { operation: None, batch: true, code }.mark(&mut resp);
            resp
        }
    };
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// One operation, run and settled.
struct Done {
    response: async_graphql::Response,
    committed: bool,
    statements: Option<u64>,
    /// The operation's name, as sent or as its persisted document says.
    operation: Option<String>,
}

impl Done {
    /// An operation refused before it ran.
    fn failed(err: ApiError) -> Self {
        Self {
            response: async_graphql::Response::from_errors(vec![err.into_server_error()]),
            committed: false,
            statements: None,
            operation: None,
        }
    }
}

async fn run(schema: &AppSchema, state: &AppState, ctx: Arc<RequestContext>, op: async_graphql::Request, get: bool) -> Result<Done, ApiError> {
    // Persisted queries and trusted documents first: what follows sees the
    // text that will run.
    let (op, registration) = match documents::resolve(state, &ctx, op).await {
        Ok(resolved) => resolved,
        Err(e) => return Err(pipeline::abandon(&ctx, state, e).await),
    };
    let found = crate::graphql::shape::operation(&op.query, op.operation_name.as_deref(), state.settings.limits.max_tokens);
    let operation = op.operation_name.clone().or_else(|| found.and_then(|(_, name)| name).map(str::to_owned));
    // One that names no operation within the token budget counts as a
    // query: execution refuses it before anything runs.
    let query = found.is_none_or(|(kind, _)| kind == OperationType::Query);
    if get && !query {
        let refused = ApiError::MethodNotAllowed("only queries may be sent with GET; send mutations with POST");
        return Err(pipeline::abandon(&ctx, state, refused).await);
    }
    // Queries stay readers: on SQLite they never wait for a writer.
    if !query && let Err(e) = ctx.begin_writing().await {
        return Err(pipeline::abandon(&ctx, state, e).await);
    }
    // Boxed: the execution future is large (in a debug build, tens of KiB),
    // and moving it by value through the timeout would copy it onto the
    // stack each time; on the heap it stays put.
    let execution = Box::pin(schema.execute(crate::graphql::prepare(op, ctx.clone(), state.clone())));
    let Ok(mut response) = tokio::time::timeout(state.settings.limits.operation_timeout(), execution).await else {
        return Ok(Done { operation, ..timed_out(ctx, state) });
    };
    let commit = response.errors.is_empty();
    let mut committed = commit;
    if let Err(e) = pipeline::end(&ctx, state, commit).await {
        committed = false;
        response = async_graphql::Response::from_errors(vec![e.into_server_error()]);
    }
    documents::settle(state, registration, &response).await;
    let statements = ctx.db().ok().map(|db| db.statement_count());
    Ok(Done { response, committed, statements, operation })
}

/// The operation ran past `limits.operation_timeout_ms`, and its execution
/// was dropped where it stood (its dataloaders' loads with it: see
/// `Loaders`). Its transaction is rolled back without holding the answer:
/// a statement it left running must end first (on PostgreSQL within
/// `lock_timeout` or `statement_timeout`), and nothing of it can commit
/// meanwhile, since only the answer path sends COMMIT.
fn timed_out(ctx: Arc<RequestContext>, state: &AppState) -> Done {
    let limit_ms = state.settings.limits.operation_timeout_ms;
    tracing::warn!(limit_ms, "an operation ran out of time and was ended");
    let statements = ctx.db().ok().map(|db| db.statement_count());
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = pipeline::end(&ctx, &state, false).await {
            tracing::warn!(error = ?e, "rolling back an operation that ran out of time");
        }
    });
    Done { statements, ..Done::failed(ApiError::Timeout { limit_ms }) }
}

/// The outcome a request's metrics and log line name: `OK`, or the first
/// error's code.
fn outcome_code(done: &Done) -> String {
    done.response.errors.first().map_or_else(|| "OK".to_owned(), |e| code(e).unwrap_or_else(|| "GRAPHQL_ERROR".to_owned()))
}

fn code(err: &async_graphql::ServerError) -> Option<String> {
    match err.extensions.as_ref()?.get("code")? {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// A request error: the operation never ran (it did not parse, validate,
/// coerce its variables, or name an operation of the document), so there is
/// no `data` and no error has a path.
fn is_request_error(resp: &async_graphql::Response) -> bool {
    !resp.errors.is_empty() && resp.data == Value::Null && resp.errors.iter().all(|e| e.path.is_empty())
}

/// The status an answer takes, and its `Retry-After`:
/// - an operation that failed because a dependency is unavailable, and so
///   changed nothing, is `503` with `Retry-After` (body unchanged), so that
///   clients and proxies retry it instead of reading a permanent failure;
/// - an operation ended by its timeout is `504`, without `Retry-After`;
/// - `RATE_LIMITED` carries `Retry-After` (the longest asked), and a request
///   error with it (a rate limit refused the operation) is `429` whatever
///   the media type;
/// - a request error is `400` in `application/graphql-response+json` and
///   `200` in `application/json`, as GraphQL over HTTP says;
/// - everything else that ran is `200`.
fn status_of(done: &Done, media: Media) -> (StatusCode, Option<u64>) {
    let codes: Vec<String> = done.response.errors.iter().filter_map(code).collect();
    if !done.committed && codes.iter().any(|c| c == "SERVICE_UNAVAILABLE" || c == "OUTCOME_UNKNOWN") {
        return (StatusCode::SERVICE_UNAVAILABLE, Some(crate::error::UNAVAILABLE_RETRY_AFTER));
    }
    if codes.iter().any(|c| c == "OPERATION_TIMEOUT") {
        return (StatusCode::GATEWAY_TIMEOUT, None);
    }
    let retry_after = done
        .response
        .errors
        .iter()
        .filter(|e| code(e).as_deref() == Some("RATE_LIMITED"))
        .filter_map(|e| match e.extensions.as_ref()?.get("retryAfter")? {
            Value::Number(n) => n.as_u64(),
            _ => None,
        })
        .max();
    let status = if !is_request_error(&done.response) {
        StatusCode::OK
    } else if codes.iter().any(|c| c == "INTERNAL") {
        StatusCode::INTERNAL_SERVER_ERROR
    } else if codes.iter().any(|c| c == "RATE_LIMITED") {
        StatusCode::TOO_MANY_REQUESTS
    } else if media == Media::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (status, retry_after)
}

/// The GraphQL response body, written straight from the executor's values
/// so that fields keep the order of the selection; a request error has no
/// `data` entry.
#[derive(serde::Serialize)]
pub(super) struct AnswerBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a async_graphql::Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [async_graphql::ServerError],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
}

pub(super) fn body_of(resp: &async_graphql::Response) -> AnswerBody<'_> {
    AnswerBody { data: (!is_request_error(resp)).then_some(&resp.data), errors: &resp.errors, extensions: &resp.extensions }
}

fn with_retry_after(mut resp: Response, retry_after: Option<u64>) -> Response {
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn answer(done: &Done, media: Media) -> Response {
    let (status, retry_after) = status_of(done, media);
    let body = serde_json::to_vec(&body_of(&done.response)).unwrap_or_default();
    with_retry_after(response::json(media, status, body), retry_after)
}

/// A batch is answered `200` in JSON, one GraphQL response per operation in
/// order; each keeps its own errors.
fn answer_batch(done: &[Done]) -> Response {
    let bodies: Vec<AnswerBody<'_>> = done.iter().map(|d| body_of(&d.response)).collect();
    let retry_after = done.iter().filter_map(|d| status_of(d, Media::Json).1).max();
    let body = serde_json::to_vec(&bodies).unwrap_or_default();
    with_retry_after(response::json(Media::Json, StatusCode::OK, body), retry_after)
}
