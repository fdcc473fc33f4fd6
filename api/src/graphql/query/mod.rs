//! The query root, merged from one object per domain.

mod domain;
mod identity;
mod platform;
mod tenant;
pub(crate) mod trusted_documents;

#[derive(async_graphql::MergedObject, Default)]
pub struct Query(
    tenant::TenantQuery,
    identity::IdentityQuery,
    domain::DomainQuery,
    platform::PlatformQuery,
    trusted_documents::TrustedDocumentsQuery,
);
