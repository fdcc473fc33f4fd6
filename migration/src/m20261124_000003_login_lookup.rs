//! PostgreSQL only: signing in by email on the general API host must find the
//! account before the tenant is known. A second, read-only policy on `users`
//! shows exactly the rows whose email equals the transaction's
//! `aggios.login_email` setting — and nothing when it is unset. Only the
//! login path sets it, the same way only the request path sets the tenant.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

use crate::LOGIN_EMAIL_SETTING;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE POLICY login_lookup ON users FOR SELECT
                   USING (email = NULLIF(current_setting('{LOGIN_EMAIL_SETTING}', true), ''))"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared("DROP POLICY IF EXISTS login_lookup ON users").await?;
        Ok(())
    }
}
