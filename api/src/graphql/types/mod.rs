//! GraphQL objects and inputs, mapped from store models.

mod tenant;

pub use tenant::Tenant;
