//! The query root, merged from one object per domain.

mod tenant;

#[derive(async_graphql::MergedObject, Default)]
pub struct Query(tenant::TenantQuery);
