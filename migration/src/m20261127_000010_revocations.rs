//! The durable record of ended access. Access tokens are self-contained, so
//! ending one early needs a list that every replica checks: one row per cut
//! (all tokens of a user, of a tenant or of a platform administrator issued
//! before `cut_at_us`) or per ended session. Rows are kept only as long as a
//! token issued before them could live (`expires_at`).
//!
//! It is a platform table, like `tenants`: it holds ids and instants, no
//! tenant content, and must be read whole (every replica loads the live rows
//! into memory), so it carries no RLS policy. The runtime role may read,
//! add and prune rows, never change one.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

use crate::RUNTIME_ROLE;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Revocations {
    Table,
    Id,
    Kind,
    TenantId,
    SubjectId,
    CutAtUs,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Revocations::Table)
                    .col(pk_uuid(Revocations::Id))
                    // user | tenant | session | admin
                    .col(string_len(Revocations::Kind, 16))
                    .col(uuid_null(Revocations::TenantId))
                    .col(uuid(Revocations::SubjectId))
                    .col(big_integer(Revocations::CutAtUs))
                    .col(timestamp_with_time_zone(Revocations::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("revocations_expires_at")
                    .table(Revocations::Table)
                    .col(Revocations::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(&format!("GRANT SELECT, INSERT, DELETE ON revocations TO {RUNTIME_ROLE}"))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Revocations::Table).to_owned()).await
    }
}
