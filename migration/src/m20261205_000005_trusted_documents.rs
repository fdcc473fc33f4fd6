//! Trusted documents (persisted query lists): each agency's manifests,
//! versioned (every upload a new version; the latest is the active one),
//! their operations, and the agency's mode for API keys. All three are
//! tenant tables: on PostgreSQL confined to the transaction's tenant by
//! forced RLS like every other.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

use crate::{
    m20261124_000001_create_tables::{index, scoped_fk, tenant_fk, tenant_index},
    m20261124_000002_row_level_security::isolate,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum TrustedDocumentManifests {
    Table,
    Id,
    TenantId,
    /// 1, 2, … per agency, in upload order.
    Version,
    /// APOLLO or RELAY.
    Format,
    OperationCount,
    /// The user who uploaded it; none when the platform did (CLI).
    UploadedByUserId,
    /// Who uploaded it, as shown in listings (an email, or "platform").
    UploadedBy,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum TrustedDocuments {
    Table,
    Id,
    TenantId,
    ManifestId,
    /// The id clients send: the manifest's `id` (Apollo) or key (Relay).
    DocumentId,
    OperationName,
    OperationType,
    Body,
}

#[derive(DeriveIden, Clone, Copy)]
enum TrustedDocumentSettings {
    Table,
    TenantId,
    /// OFF, LOG_UNKNOWN or REQUIRE (for API keys).
    Mode,
    UpdatedByUserId,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use TrustedDocumentManifests as M;
        manager
            .create_table(
                Table::create()
                    .table(M::Table)
                    .col(pk_uuid(M::Id))
                    .col(uuid(M::TenantId))
                    .col(integer(M::Version))
                    .col(string_len(M::Format, 16))
                    .col(integer(M::OperationCount))
                    .col(uuid_null(M::UploadedByUserId))
                    .col(string_len(M::UploadedBy, 320))
                    .col(timestamp_with_time_zone(M::CreatedAt))
                    .foreign_key(&mut tenant_fk(M::Table, M::TenantId))
                    .to_owned(),
            )
            .await?;
        manager.create_index(tenant_index("trusted_document_manifests_tenant_id_id", M::Table, M::TenantId, M::Id)).await?;
        // Two uploads at once cannot take the same version.
        manager
            .create_index(index("trusted_document_manifests_tenant_id_version", M::Table, vec![M::TenantId, M::Version]).unique().to_owned())
            .await?;

        use TrustedDocuments as D;
        manager
            .create_table(
                Table::create()
                    .table(D::Table)
                    .col(pk_uuid(D::Id))
                    .col(uuid(D::TenantId))
                    .col(uuid(D::ManifestId))
                    .col(string_len(D::DocumentId, 256))
                    .col(string_len_null(D::OperationName, 256))
                    .col(string_len_null(D::OperationType, 16))
                    .col(text(D::Body))
                    .foreign_key(&mut tenant_fk(D::Table, D::TenantId))
                    .foreign_key(&mut scoped_fk(D::Table, D::TenantId, D::ManifestId, M::Table, M::TenantId, M::Id, ForeignKeyAction::Cascade))
                    .to_owned(),
            )
            .await?;
        manager.create_index(tenant_index("trusted_documents_tenant_id_id", D::Table, D::TenantId, D::Id)).await?;
        manager
            .create_index(
                index("trusted_documents_tenant_id_manifest_id_document_id", D::Table, vec![D::TenantId, D::ManifestId, D::DocumentId])
                    .unique()
                    .to_owned(),
            )
            .await?;

        use TrustedDocumentSettings as S;
        manager
            .create_table(
                Table::create()
                    .table(S::Table)
                    .col(pk_uuid(S::TenantId))
                    .col(string_len(S::Mode, 16))
                    .col(uuid_null(S::UpdatedByUserId))
                    .col(timestamp_with_time_zone(S::UpdatedAt))
                    .foreign_key(&mut tenant_fk(S::Table, S::TenantId))
                    .to_owned(),
            )
            .await?;

        if manager.get_database_backend() == DatabaseBackend::Postgres {
            let db = manager.get_connection();
            for table in ["trusted_document_manifests", "trusted_documents", "trusted_document_settings"] {
                db.execute_unprepared(&isolate(table, "SELECT, INSERT, UPDATE, DELETE")).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Grants and policies go with the tables.
        manager.drop_table(Table::drop().table(TrustedDocumentSettings::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(TrustedDocuments::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(TrustedDocumentManifests::Table).to_owned()).await
    }
}
