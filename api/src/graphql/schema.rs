//! Building the schema: the merged roots, limits, and what production hides.

use async_graphql::{EmptySubscription, Schema};

use super::{
    limits::{CostLimit, DepthLimit},
    mutation::Mutation,
    query::Query,
    rate_limit::RateLimit,
    request_errors::RequestErrors,
};

pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

#[derive(Debug, Clone, Copy)]
pub struct SchemaOptions {
    /// Introspection and field suggestions are for development only.
    pub production: bool,
}

pub fn build_schema(options: SchemaOptions) -> AppSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .extension(RequestErrors)
        // Outside every other check: it charges an operation only once
        // those inside it (depth, cost) have let it through.
        .extension(RateLimit)
        // Not `limit_depth`: it counts introspection's own nesting, and
        // refuses the standard introspection query (see `limits`).
        .extension(DepthLimit)
        .extension(CostLimit)
        .limit_recursive_depth(32)
        .limit_directives(16);
    if options.production {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}
