//! The mutation root, merged from one object per domain.

mod api_keys;
mod auth;
mod domain;
mod platform;
mod trusted_documents;
mod users;

#[derive(async_graphql::MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    users::UserMutation,
    api_keys::ApiKeyMutation,
    domain::DomainMutation,
    platform::PlatformMutation,
    trusted_documents::TrustedDocumentsMutation,
);
