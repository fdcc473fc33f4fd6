//! `GET` and `POST /graphql`: resolve the tenant, build the request context,
//! execute, then commit or roll back the request's transaction before
//! answering.

use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use async_graphql_poem::{GraphQLRequest, GraphQLResponse};
use poem::{
    IntoResponse, Request, Response, handler,
    http::{Method, StatusCode},
    web::{Data, Json},
};

use super::RequestId;
use crate::{
    auth::authenticate::{Credentials, authenticate},
    error::ApiError,
    startup::AppState,
    store::sessions::ClientInfo,
    tenancy::RequestContext,
};

pub fn error_response(err: ApiError) -> Response {
    let status = err.status();
    let mut resp = Json(err.into_response_body()).into_response();
    resp.set_status(status);
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert("www-authenticate", poem::http::HeaderValue::from_static("Bearer"));
    }
    resp
}

#[handler]
pub async fn graphql(req: &Request, Data(state): Data<&AppState>, gql: GraphQLRequest) -> Response {
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let host = req.uri().host().map(str::to_owned).or_else(|| req.header("host").map(str::to_owned)).unwrap_or_default();
    let resolved = match state.tenants.resolve(&host, req.header("x-tenant")).await {
        Ok(r) => r,
        Err(e) => return error_response(e),
    };
    if req.method() == Method::GET && !is_query(&gql.0) {
        return error_response(ApiError::MethodNotAllowed(
            "only queries may be sent with GET; send mutations with POST",
        ));
    }

    let client = ClientInfo { ip: client_ip(req, state.settings.server.trust_forwarded_for), user_agent: req.header("user-agent").map(str::to_owned) };
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
    let ctx = Arc::new(ctx);
    let mut response = state.schema.execute(gql.0.data(ctx.clone()).data(state.clone())).await;
    let commit = response.errors.is_empty();
    if let Err(e) = ctx.finish(commit).await {
        let err: async_graphql::Error = ApiError::internal(e).into();
        response = async_graphql::Response::from_errors(vec![err.into_server_error(Default::default())]);
    }
    let mut resp = GraphQLResponse(response).into_response();
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

/// The client's address: the peer, or behind a trusted proxy the address it
/// appended last to `X-Forwarded-For`.
fn client_ip(req: &Request, trust_forwarded_for: bool) -> Option<String> {
    if trust_forwarded_for
        && let Some(ip) = req
            .header("x-forwarded-for")
            .and_then(|h| h.rsplit(',').next())
            .and_then(|last| last.trim().parse::<std::net::IpAddr>().ok())
    {
        return Some(ip.to_string());
    }
    req.remote_addr().as_socket_addr().map(|a| a.ip().to_string())
}

/// Whether the operation a GET would run is a query. A document that does not
/// parse is let through: execution answers with the syntax error.
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
