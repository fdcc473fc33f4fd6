//! The GraphQL API: one schema, queries and mutations split by domain and
//! merged. Resolvers translate arguments, call `store`, and map models to
//! GraphQL types; nothing else.

mod connection;
mod guards;
pub mod limits;
pub mod loaders;
mod mutation;
mod query;
mod schema;
pub mod types;

pub use schema::{AppSchema, SchemaOptions, build_schema};

use async_graphql::Context;

use crate::tenancy::RequestContext;

/// The per-request context. The HTTP layer always inserts it; a schema
/// executed without it is a programming error, reported as INTERNAL.
pub(crate) fn request<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a RequestContext> {
    ctx.data::<std::sync::Arc<RequestContext>>()
        .map(|c| c.as_ref())
        .map_err(|_| crate::error::ApiError::internal(anyhow::anyhow!("request context missing")).into())
}

/// The application's services. The HTTP layer inserts them per request.
pub(crate) fn state<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a crate::startup::AppState> {
    ctx.data::<crate::startup::AppState>()
        .map_err(|_| crate::error::ApiError::internal(anyhow::anyhow!("application state missing")).into())
}

/// A GraphQL `ID` that must be one of ours; anything else is simply not found.
pub(crate) fn parse_id(id: &async_graphql::ID, what: &'static str) -> Result<uuid::Uuid, crate::error::ApiError> {
    uuid::Uuid::try_parse(id.as_str()).map_err(|_| crate::error::ApiError::NotFound(what))
}
