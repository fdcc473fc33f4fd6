//! The GraphQL API: one schema, queries and mutations split by domain and
//! merged. Resolvers translate arguments, call `store`, and map models to
//! GraphQL types; nothing else.

pub mod loaders;
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
