//! HTTP: routes and the request pipeline. Every route sits behind the same
//! middleware (request id, client address, panics caught, compression,
//! security headers, CORS, API version); `/graphql` and the file routes
//! then take the pipeline's steps (`pipeline`), and `response` is where an
//! error becomes an answer.

mod api_version;
mod client_addr;
mod compression;
mod cors;
mod csrf;
mod documents;
mod files;
mod graphql;
mod graphql_body;
mod health;
mod live;
mod multipart;
pub mod metrics;
mod observe;
mod pipeline;
pub mod playground;
mod rate_limit;
mod request_id;
pub mod response;
mod security_headers;
pub mod server;
mod ws;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Route, get};

pub use client_addr::ClientAddr;
pub use request_id::RequestId;

use crate::{
    graphql::{SchemaOptions, document_cache::DocumentCache, serving_schema},
    state::AppState,
};

/// The host a request was sent to: the absolute URI's, or the `Host` header.
fn request_host(req: &poem::Request) -> String {
    req.uri().host().map(str::to_owned).or_else(|| req.header("host").map(str::to_owned)).unwrap_or_default()
}

pub fn routes(state: AppState) -> impl Endpoint<Output = poem::Response> {
    let trusted: Arc<[crate::net::Cidr]> = state.settings.trusted_proxies().into();
    let cors = Arc::new(cors::Cors::new(&state.settings.server.cors_allowed_origins, state.tenants.clone()));
    let security = Arc::new(security_headers::SecurityHeaders::new(state.settings.server.hsts_max_age_secs));
    let pq = &state.settings.persisted_queries;
    let documents = Arc::new(DocumentCache::new(pq.document_cache_bytes, pq.max_document_bytes));
    let options = SchemaOptions { production: state.settings.is_production(), limits: state.settings.limits.clone() };
    let schema = serving_schema(options, documents);
    let live = live::Live::start(schema.clone(), state.clone());
    let base_domain: Arc<str> = state.settings.server.base_domain.as_str().into();
    let draining = state.draining.clone();
    Route::new()
        .at("/graphql", get(graphql::graphql).post(graphql::graphql).around(rate_limit::with_headers))
        .at("/playground", get(playground::index))
        .at("/playground/", get(playground::index))
        .at("/playground/:file", get(playground::asset))
        .at("/files/:grant", get(files::download).put(files::upload))
        .at("/healthz", get(health::healthz))
        .at("/readyz", get(health::readyz))
        .data(state)
        .data(schema)
        .data(live)
        .around(api_version::with_api_version)
        .around(move |ep, req| cors::with_cors(ep, req, cors.clone()))
        .around(move |ep, req| security_headers::with_security_headers(ep, req, security.clone()))
        .around(compression::with_compression)
        // A panic in a handler or library answers 500 instead of dropping the connection.
        .with(poem::middleware::CatchPanic::new())
        .around(move |ep, req| client_addr::with_client_addr(ep, trusted.clone(), req))
        .around(move |ep, req| observe::with_observation(ep, req, base_domain.clone(), draining.clone()))
        .around(request_id::with_request_id)
}
