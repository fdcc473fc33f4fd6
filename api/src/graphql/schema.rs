//! Building the schema: the merged roots, limits, and what production hides.

use std::sync::Arc;

use async_graphql::{Schema, SchemaBuilder};

use crate::config::LimitsSettings;

use super::{
    document_cache::{DocumentCache, DocumentCacheExtension},
    limits::{CostLimit, OperationLimits},
    mutation::Mutation,
    query::Query,
    rate_limit::RateLimit,
    request_errors::RequestErrors,
    response_order::ResponseOrder,
    subscription::Subscription,
};

pub type AppSchema = Schema<Query, Mutation, Subscription>;

#[derive(Debug, Clone)]
pub struct SchemaOptions {
    /// Introspection and field suggestions are for development only.
    pub production: bool,
    pub limits: LimitsSettings,
}

pub fn build_schema(options: SchemaOptions) -> AppSchema {
    builder(options).finish()
}

/// The schema a server runs: [`build_schema`]'s, keeping parsed and
/// validated documents in `documents` (also the schema's data, for the HTTP
/// layer). Its extension comes last, so it is the innermost: every check
/// the others make on a parsed document still runs on a cached one.
pub fn serving_schema(options: SchemaOptions, documents: Arc<DocumentCache>) -> AppSchema {
    builder(options).extension(DocumentCacheExtension(documents.clone())).data(documents).finish()
}

fn builder(options: SchemaOptions) -> SchemaBuilder<Query, Mutation, Subscription> {
    let mut builder = Schema::build(Query::default(), Mutation::default(), Subscription)
        .extension(RequestErrors)
        // Outside every other check: it charges an operation only once
        // those inside it (limits, cost) have let it through.
        .extension(RateLimit)
        // Before any extension that may answer `parse_query` without the
        // parser (the document cache, innermost): every document's text
        // passes here. Depth and directives are counted here too: the
        // library's `limit_depth` counts introspection's own nesting, and its
        // `limit_directives` counts per field, refusing with no code.
        .extension(OperationLimits::new(options.limits.clone()))
        .extension(CostLimit { max_cost: options.limits.max_cost })
        // Sees the parsed document (cached or not) and puts each answer's
        // fields in the order they were asked.
        .extension(ResponseOrder)
        .limit_recursive_depth(32);
    if options.production {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder
}
