//! Building the schema: the merged roots, limits, and what production hides.

use async_graphql::{EmptySubscription, Schema};

use crate::config::LimitsSettings;

use super::{
    limits::{CostLimit, OperationLimits},
    mutation::Mutation,
    query::Query,
    request_errors::RequestErrors,
};

pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

#[derive(Debug, Clone)]
pub struct SchemaOptions {
    /// Introspection and field suggestions are for development only.
    pub production: bool,
    pub limits: LimitsSettings,
}

pub fn build_schema(options: SchemaOptions) -> AppSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .extension(RequestErrors)
        // Before any extension that may answer `parse_query` without the
        // parser (a document cache): every document's text passes here.
        // Depth and directives are counted here too: the library's
        // `limit_depth` counts introspection's own nesting, and its
        // `limit_directives` counts per field, refusing with no code.
        .extension(OperationLimits::new(options.limits.clone()))
        .extension(CostLimit { max_cost: options.limits.max_cost })
        .limit_recursive_depth(32);
    if options.production {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}
