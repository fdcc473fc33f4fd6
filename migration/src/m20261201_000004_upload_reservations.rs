//! Quota reservations of direct uploads: a grant takes its size from the
//! agency's quota at once, so grants cannot add up past it while their bytes
//! are on their way. A reservation is confirmed when its upload is recorded
//! (its bytes then count through their version) and removed once its grant
//! has expired; unconfirmed, its size is given back then. On PostgreSQL the
//! table is confined to the transaction's tenant like every tenant table.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

use crate::{
    m20261124_000001_create_tables::{index, tenant_fk, tenant_index},
    m20261124_000002_row_level_security::isolate,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum UploadReservations {
    Table,
    /// The id of the version the upload will become.
    Id,
    TenantId,
    SizeBytes,
    /// When the grant expires.
    ExpiresAt,
    ConfirmedAt,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UploadReservations::Table)
                    .col(pk_uuid(UploadReservations::Id))
                    .col(uuid(UploadReservations::TenantId))
                    .col(big_integer(UploadReservations::SizeBytes))
                    .col(timestamp_with_time_zone(UploadReservations::ExpiresAt))
                    .col(timestamp_with_time_zone_null(UploadReservations::ConfirmedAt))
                    .col(timestamp_with_time_zone(UploadReservations::CreatedAt))
                    .foreign_key(&mut tenant_fk(UploadReservations::Table, UploadReservations::TenantId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(tenant_index(
                "upload_reservations_tenant_id_id",
                UploadReservations::Table,
                UploadReservations::TenantId,
                UploadReservations::Id,
            ))
            .await?;
        manager
            .create_index(index(
                "upload_reservations_tenant_id_expires_at",
                UploadReservations::Table,
                vec![UploadReservations::TenantId, UploadReservations::ExpiresAt],
            ))
            .await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(&isolate("upload_reservations", "SELECT, INSERT, UPDATE, DELETE"))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Its grants and policy go with the table.
        manager.drop_table(Table::drop().table(UploadReservations::Table).to_owned()).await
    }
}
