//! PostgreSQL only: the least-privilege runtime role, its grants, and forced
//! Row-Level Security on every tenant table. Policies compare `tenant_id` with
//! the transaction's `aggios.tenant_id` setting; an unset or empty setting
//! yields NULL, so nothing matches and nothing can be written (fail closed).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

use crate::{RUNTIME_ROLE, TENANT_SETTING};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tenant tables this migration found. Later migrations guard the tables
/// they add themselves (with `isolate`), so this list stays as it was.
const TABLES: &[&str] =
    &["users", "refresh_tokens", "api_keys", "clients", "projects", "documents", "document_versions", "audit_events"];

/// Tables the runtime role may only append to and read.
const APPEND_ONLY: &[&str] = &["audit_events"];

/// Tables outside tenancy that the runtime role reads and writes.
const PLATFORM_TABLES: &[&str] = &["tenants", "platform_admins"];

fn tenant_expr() -> String {
    format!("NULLIF(current_setting('{TENANT_SETTING}', true), '')::uuid")
}

/// Grants the runtime role `privileges` on a tenant table and confines it
/// with a forced RLS policy to the transaction's tenant.
pub(crate) fn isolate(table: &str, privileges: &str) -> String {
    let expr = tenant_expr();
    format!(
        "GRANT {privileges} ON {table} TO {RUNTIME_ROLE};
         ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
         ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
         CREATE POLICY tenant_isolation ON {table}
           USING (tenant_id = {expr})
           WITH CHECK (tenant_id = {expr});"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        // Roles are cluster-wide: several databases (and concurrent test
        // runs) may race to create it, so tolerate "already exists".
        db.execute_unprepared(&format!(
            "DO $$ BEGIN
               CREATE ROLE {RUNTIME_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
             END $$"
        ))
        .await?;
        db.execute_unprepared(&format!("GRANT USAGE ON SCHEMA public TO {RUNTIME_ROLE}"))
            .await?;
        for table in PLATFORM_TABLES {
            db.execute_unprepared(&format!(
                "GRANT SELECT, INSERT, UPDATE ON {table} TO {RUNTIME_ROLE}"
            ))
            .await?;
        }
        for table in TABLES {
            let privileges = if APPEND_ONLY.contains(table) {
                "SELECT, INSERT"
            } else {
                "SELECT, INSERT, UPDATE, DELETE"
            };
            db.execute_unprepared(&isolate(table, privileges)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for table in TABLES {
            db.execute_unprepared(&format!(
                "DROP POLICY IF EXISTS tenant_isolation ON {table};
                 ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY;
                 ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;
                 REVOKE ALL ON {table} FROM {RUNTIME_ROLE};"
            ))
            .await?;
        }
        for table in PLATFORM_TABLES {
            db.execute_unprepared(&format!("REVOKE ALL ON {table} FROM {RUNTIME_ROLE}"))
                .await?;
        }
        // The role itself stays: it is shared by every database of the
        // cluster, and dropping it would break the others.
        db.execute_unprepared(&format!("REVOKE USAGE ON SCHEMA public FROM {RUNTIME_ROLE}"))
            .await?;
        Ok(())
    }
}
