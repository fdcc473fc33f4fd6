//! The GraphQL API: one schema, queries and mutations split by domain and
//! merged. Resolvers translate arguments, call `store`, and map models to
//! GraphQL types; nothing else.

mod connection;
pub mod document_cache;
mod guards;
pub mod limits;
pub mod loaders;
mod mutation;
mod plan;
pub use plan::PlannedReads;
mod query;
mod rate_limit;
pub mod request_errors;
mod response_order;
mod schema;
pub mod shape;
pub mod subscription;
pub mod types;

pub use schema::{AppSchema, SchemaOptions, build_schema, serving_schema};

use async_graphql::Context;

use crate::{request::RequestContext, state::AppState};

/// The per-request context. The HTTP layer always inserts it; a schema
/// executed without it is a programming error, reported as INTERNAL.
pub(crate) fn request<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a RequestContext> {
    ctx.data::<std::sync::Arc<RequestContext>>()
        .map(|c| c.as_ref())
        .map_err(|_| crate::error::ApiError::internal(anyhow::anyhow!("request context missing")).into())
}

/// The application's services. The HTTP layer inserts them per request.
pub(crate) fn state<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a AppState> {
    ctx.data::<AppState>().map_err(|_| crate::error::ApiError::internal(anyhow::anyhow!("application state missing")).into())
}

/// The request's dataloaders, or `TENANT_REQUIRED` on the bare API host.
pub(crate) fn loaders<'a>(ctx: &Context<'a>) -> Result<&'a loaders::Loaders, crate::error::ApiError> {
    ctx.data_opt::<loaders::Loaders>().ok_or(crate::error::ApiError::TenantRequired)
}

/// A GraphQL request made ready to run for one HTTP request: its context,
/// the services, and dataloaders over its tenant's transaction (fresh for
/// every request, so no cache outlives it or crosses tenants).
pub fn prepare(request: async_graphql::Request, ctx: std::sync::Arc<RequestContext>, state: AppState) -> async_graphql::Request {
    let loaders = ctx.db().ok().map(|db| loaders::Loaders::new(db.clone()));
    let request = request.data(ctx).data(state);
    match loaders {
        Some(l) => request.data(l),
        None => request,
    }
}

/// An optional `ID` argument, parsed as [`parse_id`] does.
pub(crate) fn parse_opt_id(id: Option<&async_graphql::ID>, what: &'static str) -> Result<Option<uuid::Uuid>, crate::error::ApiError> {
    id.map(|i| parse_id(i, what)).transpose()
}

/// A GraphQL `ID` that must be one of ours; anything else is simply not found.
pub(crate) fn parse_id(id: &async_graphql::ID, what: &'static str) -> Result<uuid::Uuid, crate::error::ApiError> {
    uuid::Uuid::try_parse(id.as_str()).map_err(|_| crate::error::ApiError::NotFound(what))
}
