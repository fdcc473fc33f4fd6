//! GraphQL subscriptions over WebSocket: the `graphql-transport-ws`
//! protocol (as the `graphql-ws` library speaks it) at `/graphql`. The
//! handshake takes the pipeline's steps: the tenant from the Host, the
//! Origin as CORS decided it, and the credential of `connection_init`
//! authenticated like a request's. Refusals close the socket with the
//! protocol's codes: 4403 for a credential, tenant or origin refused (and
//! when access ends or the token expires: `graphql-ws` clients then connect
//! again, asking their app for fresh connection params), 4400 for a bad
//! message, 4401 for a subscribe before the acknowledgement, 4406 for
//! another subprotocol, 4408 for no `connection_init` in time, 4409 for a
//! duplicate id, 4429 for a second `connection_init`; 1013 for too many
//! connections or a client that reads too slowly, 1012 when the server
//! stops. What runs is in `live`.

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures::{SinkExt as _, StreamExt as _};
use poem::{
    Request,
    web::websocket::{Message, WebSocketStream},
};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{
    ClientAddr, RequestId, cors::OriginVerdict, documents, live::{Connection, Live, Operation, Sub}, pipeline, request_host,
};
use crate::{
    auth::authenticate::{Credentials, authenticate_access, bearer},
    error::ApiError,
    graphql::subscription::Registering,
    request::RequestContext,
    store::sessions::ClientInfo,
    tenancy::ResolvedTenant,
};

mod protocol;

use protocol::{ClientMessage, Read, SubscribePayload, close, read, text};

pub const PROTOCOL: &str = "graphql-transport-ws";

/// What the handshake request told, kept for the socket's life.
pub struct Handshake {
    resolved: ResolvedTenant,
    /// The upgrade's Host: on the API host `connection_init` may name the agency.
    host: String,
    client: ClientInfo,
    request_id: String,
    /// Why the socket must close at once, if it must.
    refused: Option<(u16, &'static str)>,
}

/// Whether `req` asks for a WebSocket.
pub fn is_upgrade(req: &Request) -> bool {
    req.header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
}

/// The handshake's checks that need no message: the tenant (an unknown host
/// is refused before any upgrade), the subprotocol and the Origin.
pub async fn handshake(req: &Request, live: &Live) -> Result<Handshake, ApiError> {
    let resolved = pipeline::tenant(req, live.state()).await?;
    let offered = req.header("sec-websocket-protocol").unwrap_or_default();
    let protocol_ok = offered.split(',').any(|p| p.trim() == PROTOCOL);
    let refused = if !protocol_ok {
        Some((4406, "Subprotocol not acceptable: use graphql-transport-ws"))
    } else if !origin_allowed(req) {
        Some((4403, "Forbidden: pages of this origin may not connect (setting server.cors_allowed_origins)"))
    } else {
        None
    };
    Ok(Handshake {
        resolved,
        host: request_host(req),
        client: ClientInfo {
            ip: ClientAddr::of(req).map(|ip| ip.to_string()),
            user_agent: req.header("user-agent").map(str::to_owned),
        },
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default(),
        refused,
    })
}

/// No Origin (not a browser), the server's own origin, or one CORS allows.
fn origin_allowed(req: &Request) -> bool {
    let Some(origin) = req.header("origin") else { return true };
    let own = origin.split_once("://").is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(&request_host(req)));
    own || req.extensions().get::<OriginVerdict>().is_some_and(|v| v.0)
}

/// Serves one socket until it closes.
pub async fn serve(live: Live, hs: Handshake, socket: WebSocketStream) {
    let (mut sink, mut stream) = socket.split();
    if let Some((code, reason)) = hs.refused {
        let _ = sink.send(close(code, reason)).await;
        return;
    }
    let settings = live.settings().clone();
    // connection_init first, within the time allowed.
    let deadline = Instant::now() + Duration::from_secs(settings.init_timeout_secs);
    let payload = loop {
        let next = tokio::select! {
            m = tokio::time::timeout_at(deadline, stream.next()) => m,
            () = live.state().stopping.cancelled() => { let _ = sink.send(close(1012, "Service restart")).await; return }
        };
        let Ok(Some(Ok(message))) = next else {
            if next.is_err() {
                let _ = sink.send(close(4408, "Connection initialisation timeout")).await;
            }
            return;
        };
        match read(&message, settings.max_message_bytes) {
            Read::Message(ClientMessage::ConnectionInit { payload }) => break payload,
            Read::Message(ClientMessage::Ping {}) => {
                let _ = sink.send(text(&json!({ "type": "pong" }))).await;
            }
            Read::Message(ClientMessage::Pong {}) | Read::Skip => {}
            Read::Message(ClientMessage::Subscribe { .. } | ClientMessage::Complete { .. }) => {
                let _ = sink.send(close(4401, "Unauthorized")).await;
                return;
            }
            Read::Close => return,
            Read::Bad(code, reason) => {
                let _ = sink.send(close(code, &reason)).await;
                return;
            }
        }
    };
    // Boxed, as `start` below: a future's size is its largest await's, and
    // an idle socket should not carry the handshake's or a registration's.
    let accepted = Box::pin(accept(&live, &hs, payload.as_ref())).await;
    drop(payload);
    let (conn, _slot, expires_at) = match accepted {
        Ok(accepted) => accepted,
        Err((code, reason)) => {
            let _ = sink.send(close(code, &reason)).await;
            return;
        }
    };
    // The writer: the fan-out never waits on this socket.
    let writer = {
        let conn = conn.clone();
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    biased;
                    () = conn.closed.cancelled() => break,
                    m = conn.next_outgoing() => m,
                };
                let sent = tokio::select! {
                    s = sink.send(Message::Text(message)) => s,
                    () = conn.closed.cancelled() => break,
                };
                if sent.is_err() {
                    conn.close(1006, "");
                    return;
                }
            }
            let (code, reason) = conn.close_reason().unwrap_or((1012, "Service restart".to_owned()));
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close(code, &reason))).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        })
    };
    conn.send(json!({ "type": "connection_ack" }).to_string());
    run(&live, &conn, &mut stream, expires_at).await;
    // Whatever closed it first says why; else the server is stopping, or the client left.
    if live.state().stopping.is_cancelled() {
        conn.close(1012, "Service restart: connect again");
    } else {
        conn.close(1000, "Normal Closure");
    }
    let _ = writer.await;
}

/// Authenticates `connection_init`'s credential and takes the
/// connection's places; or the close code and reason.
async fn accept(
    live: &Live,
    hs: &Handshake,
    payload: Option<&Value>,
) -> Result<(Arc<Connection>, super::live::Slot, Option<i64>), (u16, String)> {
    let field = |names: &[&str]| {
        let p = payload?.as_object()?;
        names.iter().find_map(|n| p.get(*n)?.as_str().map(str::to_owned))
    };
    let authorization = field(&["authorization", "Authorization"]);
    let api_key = field(&["apiKey", "x-api-key", "X-API-Key"]);
    if authorization.is_none() && api_key.is_none() {
        return Err((4403, "Forbidden: connection_init must carry a credential ({\"authorization\": \"Bearer …\"} or {\"apiKey\": …})".into()));
    }
    let state = live.state();
    // A browser cannot set headers on a WebSocket: on the API host (the
    // playground there) `connection_init` names the agency as `X-Tenant`
    // does on HTTP. On an agency's own host the host decides.
    let resolved = match (&hs.resolved.tenant, field(&["x-tenant", "X-Tenant", "tenant"])) {
        (None, Some(sub)) => match pipeline::tenant_of(state, &hs.host, Some(sub.as_str())).await {
            Ok(r) => r,
            Err(ApiError::TenantNotFound | ApiError::TenantInactive) => {
                return Err((4403, "Forbidden: connection_init names no active agency".into()));
            }
            Err(e) => {
                tracing::warn!(error = ?e, request_id = %hs.request_id, "resolving a WebSocket connection's agency");
                return Err((1013, "Try again later: a service is unavailable".into()));
            }
        },
        _ => hs.resolved.clone(),
    };
    if resolved.tenant.is_none() {
        return Err((4403, "Forbidden: connect to your agency's host, or name the agency as \"x-tenant\" in connection_init".into()));
    }
    let ctx = RequestContext::new(hs.request_id.clone(), resolved.clone(), hs.client.clone(), &state.db);
    let creds = Credentials { authorization: authorization.as_deref(), api_key: api_key.as_deref() };
    let checked = authenticate_access(&state.auth, &resolved, ctx.db().ok().map(|d| d.as_ref()), creds).await;
    let _ = pipeline::end(&ctx, state, false).await;
    let access = match checked {
        Ok(access) => access,
        Err(ApiError::Unauthenticated) => {
            let expired = authorization.as_deref().and_then(bearer).is_some_and(|token| state.auth.tokens.is_expired(token));
            let reason = if expired { "Forbidden: the access token is expired" } else { "Forbidden: the credential is not valid for this agency" };
            return Err((4403, reason.into()));
        }
        Err(ApiError::TenantRequired) => return Err((4403, "Forbidden: connect to your agency's host".into())),
        Err(e) => {
            tracing::warn!(error = ?e, request_id = %hs.request_id, "authenticating a WebSocket connection");
            return Err((1013, "Try again later: a service is unavailable".into()));
        }
    };
    if matches!(access.principal, crate::auth::Principal::Anonymous) {
        return Err((4403, "Forbidden: sign in first".into()));
    }
    let since_us = access.issued_us.unwrap_or_else(|| chrono::Utc::now().timestamp_micros());
    // An API key connection keeps its key, to read it again.
    let key = access.issued_us.is_none().then(|| api_key.clone().or_else(|| authorization.as_deref().and_then(bearer).map(str::to_owned))).flatten();
    let (conn, slot) = live
        .open(resolved, access.principal, since_us, key, hs.client.clone(), hs.request_id.clone())
        .map_err(|reason| (1013, reason))?;
    Ok((conn, slot, access.expires_at))
}

/// The acknowledged connection's messages, until it closes.
async fn run(live: &Live, conn: &Arc<Connection>, stream: &mut futures::stream::SplitStream<WebSocketStream>, expires_at: Option<i64>) {
    let settings = live.settings();
    let keepalive = Duration::from_secs(settings.keepalive_secs);
    let mut ping = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
    let mut last_heard = Instant::now();
    let expiry = async {
        match expires_at {
            Some(at) => {
                let left_ms = at.saturating_mul(1000) - chrono::Utc::now().timestamp_millis();
                tokio::time::sleep(Duration::from_millis(u64::try_from(left_ms).unwrap_or(0))).await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expiry);
    let mut running: HashSet<String> = HashSet::new();
    loop {
        let next = tokio::select! {
            () = conn.closed.cancelled() => return,
            () = &mut expiry => {
                conn.close(4403, "Forbidden: the access token expired; connect again with a fresh one");
                return;
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > keepalive * 2 {
                    conn.close(1001, "Going away: the client stopped answering pings");
                    return;
                }
                conn.send(json!({ "type": "ping" }).to_string());
                continue;
            }
            m = stream.next() => m,
        };
        let Some(Ok(message)) = next else { return };
        last_heard = Instant::now();
        match read(&message, settings.max_message_bytes) {
            Read::Skip => {}
            Read::Close => return,
            Read::Bad(code, reason) => {
                conn.close(code, reason);
                return;
            }
            Read::Message(ClientMessage::Ping {}) => conn.send(json!({ "type": "pong" }).to_string()),
            Read::Message(ClientMessage::Pong {}) => {}
            Read::Message(ClientMessage::ConnectionInit { .. }) => {
                conn.close(4429, "Too many initialisation requests");
                return;
            }
            Read::Message(ClientMessage::Complete { id }) => {
                if running.remove(&id) {
                    live.unfollow(conn, &id);
                }
            }
            Read::Message(ClientMessage::Subscribe { id, payload }) => {
                if running.contains(&id) {
                    conn.close(4409, format!("Subscriber for {id} already exists"));
                    return;
                }
                if running.len() >= settings.max_per_connection {
                    let max = settings.max_per_connection;
                    let err = ApiError::OverLimit { limit: crate::error::Limit::Subscriptions, found: running.len(), max };
                    conn.send(error_message(&id, &[err.into_server_error()]));
                    continue;
                }
                match Box::pin(start(live, conn, &id, payload)).await {
                    Ok(Some(sub)) => {
                        running.insert(id);
                        live.follow(sub);
                    }
                    // Nothing to follow (its root field was skipped).
                    Ok(None) => conn.send(json!({ "id": id, "type": "complete" }).to_string()),
                    Err(errors) => conn.send(error_message(&id, &errors)),
                }
            }
        }
    }
}

fn error_message(id: &str, errors: &[async_graphql::ServerError]) -> String {
    json!({ "id": id, "type": "error", "payload": errors }).to_string()
}

/// Runs the subscription once to check it (parsing, validation, limits,
/// rate limits, guards) and learn what it follows.
async fn start(live: &Live, conn: &Arc<Connection>, id: &str, payload: SubscribePayload) -> Result<Option<Sub>, Vec<async_graphql::ServerError>> {
    let state = live.state();
    let mut op = async_graphql::Request::new(payload.query.unwrap_or_default());
    op.operation_name = payload.operation_name;
    op.variables = async_graphql::Variables::from_json(payload.variables.unwrap_or(Value::Null));
    if let Some(Value::Object(extensions)) = payload.extensions {
        for (k, v) in extensions {
            op.extensions.insert(k, async_graphql::Value::from_json(v).unwrap_or_default());
        }
    }
    let mut ctx = RequestContext::new(format!("{}-{id}", conn.request_id), conn.resolved.clone(), conn.client.clone(), &state.db);
    ctx.principal = conn.principal.clone();
    let ctx = Arc::new(ctx);
    let (op, registration) = match documents::resolve(state, &ctx, op).await {
        Ok(resolved) => resolved,
        Err(e) => return Err(vec![pipeline::abandon(&ctx, state, e).await.into_server_error()]),
    };
    let subscription = crate::graphql::shape::operation_type(&op.query, op.operation_name.as_deref(), state.settings.limits.max_tokens)
        .is_none_or(|ty| ty == async_graphql::parser::types::OperationType::Subscription);
    if !subscription {
        let refused = ApiError::MethodNotAllowed("only subscriptions run over WebSocket; send queries and mutations over HTTP");
        return Err(vec![pipeline::abandon(&ctx, state, refused).await.into_server_error()]);
    }
    let registering = Arc::new(Registering::default());
    let operation = Operation { query: op.query.clone(), operation_name: op.operation_name.clone(), variables: op.variables.clone() };
    let checked = op.data(registering.clone());
    let responses: Vec<async_graphql::Response> = {
        let stream = live.schema().execute_stream(crate::graphql::prepare(checked, ctx.clone(), state.clone()));
        tokio::time::timeout(state.settings.limits.operation_timeout(), stream.collect()).await.unwrap_or_default()
    };
    let _ = pipeline::end(&ctx, state, false).await;
    let errors: Vec<async_graphql::ServerError> = responses.into_iter().flat_map(|r| r.errors).collect();
    documents::settle(state, registration, &async_graphql::Response::from_errors(errors.clone())).await;
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(registering.interest().map(|interest| Sub::new(conn.clone(), id.to_owned(), interest, operation)))
}
