//! Database migrations for Aggios, for SQLite (the embedded default) and
//! PostgreSQL. The table layout is written once with the schema builder; what
//! only PostgreSQL has (the runtime role, grants, Row-Level Security) lives in
//! its own migration that does nothing on SQLite.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_tables;
mod m20261124_000002_row_level_security;
mod m20261124_000003_login_lookup;
mod m20261127_000010_revocations;
mod m20261201_000004_upload_reservations;
mod m20261205_000005_trusted_documents;

/// The tables that hold one tenant's rows. Each carries `tenant_id`, leads an
/// index with it, and on PostgreSQL is guarded by a forced RLS policy.
pub const TENANT_TABLES: &[&str] = &[
    "users",
    "refresh_tokens",
    "api_keys",
    "clients",
    "projects",
    "documents",
    "document_versions",
    "audit_events",
    "upload_reservations",
    "trusted_document_manifests",
    "trusted_documents",
    "trusted_document_settings",
];

/// The PostgreSQL role the server runs as: no ownership, no BYPASSRLS.
pub const RUNTIME_ROLE: &str = "aggios_app";

/// The session setting that carries the tenant of the current transaction.
pub const TENANT_SETTING: &str = "aggios.tenant_id";

/// The session setting that lets the login path read the accounts of one
/// email across tenants (see `m20261124_000003_login_lookup`).
pub const LOGIN_EMAIL_SETTING: &str = "aggios.login_email";

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_tables::Migration),
            Box::new(m20261124_000002_row_level_security::Migration),
            Box::new(m20261124_000003_login_lookup::Migration),
            Box::new(m20261127_000010_revocations::Migration),
            Box::new(m20261201_000004_upload_reservations::Migration),
            Box::new(m20261205_000005_trusted_documents::Migration),
        ]
    }
}
