//! SeaORM entities of Aggios. Plain data: no GraphQL derives here, because the
//! database schema is not the API schema (the API maps these in
//! `api/src/graphql/types`).

pub mod api_keys;
pub mod audit_events;
pub mod clients;
pub mod document_versions;
pub mod documents;
pub mod platform_admins;
pub mod projects;
pub mod refresh_tokens;
pub mod tenants;
pub mod trusted_document_manifests;
pub mod trusted_document_settings;
pub mod trusted_documents;
pub mod upload_reservations;
pub mod users;
