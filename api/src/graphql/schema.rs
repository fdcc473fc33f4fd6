//! Building the schema: the merged roots, limits, and what production hides.

use async_graphql::{EmptyMutation, EmptySubscription, Schema};

use super::query::Query;

pub type AppSchema = Schema<Query, EmptyMutation, EmptySubscription>;

#[derive(Debug, Clone, Copy)]
pub struct SchemaOptions {
    /// Introspection and field suggestions are for development only.
    pub production: bool,
}

pub fn build_schema(options: SchemaOptions) -> AppSchema {
    let mut builder = Schema::build(Query::default(), EmptyMutation, EmptySubscription)
        .limit_depth(12)
        .limit_complexity(1_000)
        .limit_recursive_depth(32)
        .limit_directives(16);
    if options.production {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}
