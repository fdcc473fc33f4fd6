//! HTTP: routes and middleware. `/graphql` is tenant-bound; health and the
//! playground are not.

mod client_addr;
mod files;
mod graphql;
mod health;
mod multipart;
pub mod playground;
mod request_id;
pub mod server;

use poem::{Endpoint, EndpointExt, Route, get};

pub use client_addr::ClientAddr;
pub use request_id::RequestId;

use crate::{
    graphql::{SchemaOptions, build_schema},
    state::AppState,
};

/// The host a request was sent to: the absolute URI's, or the `Host` header.
fn request_host(req: &poem::Request) -> String {
    req.uri().host().map(str::to_owned).or_else(|| req.header("host").map(str::to_owned)).unwrap_or_default()
}

pub fn routes(state: AppState) -> impl Endpoint<Output = poem::Response> {
    let trusted: std::sync::Arc<[crate::net::Cidr]> = state.settings.trusted_proxies().into();
    let schema = build_schema(SchemaOptions { production: state.settings.is_production() });
    Route::new()
        .at("/graphql", get(graphql::graphql).post(graphql::graphql))
        .at("/playground", get(playground::index))
        .at("/playground/", get(playground::index))
        .at("/playground/:file", get(playground::asset))
        .at("/files/:grant", get(files::download).put(files::upload))
        .at("/healthz", get(health::healthz))
        .at("/readyz", get(health::readyz))
        .data(state)
        .data(schema)
        // A panic in a handler or library answers 500 instead of dropping the connection.
        .with(poem::middleware::CatchPanic::new())
        .around(move |ep, req| client_addr::with_client_addr(ep, trusted.clone(), req))
        .around(request_id::with_request_id)
}
