//! The whole data model of SPEC §3–6 on both backends.
//!
//! Every tenant table has `tenant_id` and a unique `(tenant_id, id)` index
//! that leads with the tenant; references between tenant tables go through
//! that pair, so a row can never point at another tenant's row.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Tenants {
    Table,
    Id,
    Name,
    Subdomain,
    CustomDomain,
    IsActive,
    StorageQuotaBytes,
    StorageUsedBytes,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PlatformAdmins {
    Table,
    Id,
    Email,
    PasswordHash,
    IsActive,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    TenantId,
    Email,
    PasswordHash,
    FirstName,
    LastName,
    Role,
    IsActive,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RefreshTokens {
    Table,
    Id,
    TenantId,
    UserId,
    FamilyId,
    TokenHash,
    UserAgent,
    ClientIp,
    CreatedAt,
    LastUsedAt,
    IdleExpiresAt,
    ExpiresAt,
    RevokedAt,
    ReplacedBy,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    Id,
    TenantId,
    Name,
    Prefix,
    SecretHash,
    Scope,
    CreatedBy,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Clients {
    Table,
    Id,
    TenantId,
    Name,
    Email,
    Phone,
    Status,
    Notes,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Projects {
    Table,
    Id,
    TenantId,
    ClientId,
    Name,
    Description,
    Status,
    DueDate,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Documents {
    Table,
    Id,
    TenantId,
    ProjectId,
    ClientId,
    Name,
    ContentType,
    SizeBytes,
    ChecksumSha256,
    CurrentVersion,
    UploadedBy,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum DocumentVersions {
    Table,
    Id,
    TenantId,
    DocumentId,
    Version,
    StorageKey,
    ContentType,
    SizeBytes,
    ChecksumSha256,
    UploadedBy,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditEvents {
    Table,
    Id,
    TenantId,
    ActorUserId,
    ActorApiKeyId,
    Action,
    TargetType,
    TargetId,
    RequestId,
    Changes,
    CreatedAt,
}

/// `tenant_id` referencing `tenants`, present on every tenant table.
pub(crate) fn tenant_fk<T: IntoIden + Clone + 'static>(table: T, col: T) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Tenants::Table, Tenants::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

/// A same-tenant reference: `(tenant_id, col)` -> `(tenant_id, id)` of `to`.
pub(crate) fn scoped_fk<F, T>(
    from: F,
    tenant_col: F,
    col: F,
    to: T,
    to_tenant: T,
    to_id: T,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement
where
    F: IntoIden + Clone + 'static,
    T: IntoIden + Clone + 'static,
{
    ForeignKey::create()
        .from_tbl(from)
        .from_col(tenant_col)
        .from_col(col)
        .to_tbl(to)
        .to_col(to_tenant)
        .to_col(to_id)
        .on_delete(on_delete)
        .to_owned()
}

/// The unique `(tenant_id, id)` index that leads every tenant table.
pub(crate) fn tenant_index<T: IntoIden + Clone + 'static>(name: &str, table: T, tenant: T, id: T) -> IndexCreateStatement {
    Index::create()
        .name(name)
        .table(table)
        .col(tenant)
        .col(id)
        .unique()
        .to_owned()
}

pub(crate) fn index<T: IntoIden + Clone + 'static>(name: &str, table: T, cols: Vec<T>) -> IndexCreateStatement {
    let mut stmt = Index::create().name(name).table(table).to_owned();
    for col in cols {
        stmt.col(col);
    }
    stmt
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(pk_uuid(Tenants::Id))
                    .col(string_len(Tenants::Name, 200))
                    .col(string_len_uniq(Tenants::Subdomain, 63))
                    .col(string_len_null(Tenants::CustomDomain, 253).unique_key())
                    .col(boolean(Tenants::IsActive).default(true))
                    .col(big_integer(Tenants::StorageQuotaBytes))
                    .col(big_integer(Tenants::StorageUsedBytes).default(0))
                    .col(timestamp_with_time_zone(Tenants::CreatedAt))
                    .col(timestamp_with_time_zone(Tenants::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PlatformAdmins::Table)
                    .col(pk_uuid(PlatformAdmins::Id))
                    .col(string_len_uniq(PlatformAdmins::Email, 320))
                    .col(string_len(PlatformAdmins::PasswordHash, 255))
                    .col(boolean(PlatformAdmins::IsActive).default(true))
                    .col(timestamp_with_time_zone(PlatformAdmins::CreatedAt))
                    .col(timestamp_with_time_zone(PlatformAdmins::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    .col(uuid(Users::TenantId))
                    // Stored lower-cased by the application: unique per tenant,
                    // case-insensitively.
                    .col(string_len(Users::Email, 320))
                    .col(string_len(Users::PasswordHash, 255))
                    .col(string_len(Users::FirstName, 100))
                    .col(string_len(Users::LastName, 100))
                    .col(
                        string_len(Users::Role, 16)
                            .check(Expr::col(Users::Role).is_in(["OWNER", "ADMIN", "MEMBER"])),
                    )
                    .col(boolean(Users::IsActive).default(true))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .foreign_key(&mut tenant_fk(Users::Table, Users::TenantId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(tenant_index("users_tenant_id_id", Users::Table, Users::TenantId, Users::Id))
            .await?;
        manager
            .create_index(
                index("users_tenant_id_email", Users::Table, vec![Users::TenantId, Users::Email])
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(pk_uuid(RefreshTokens::Id))
                    .col(uuid(RefreshTokens::TenantId))
                    .col(uuid(RefreshTokens::UserId))
                    .col(uuid(RefreshTokens::FamilyId))
                    .col(string_len_uniq(RefreshTokens::TokenHash, 64))
                    .col(string_len_null(RefreshTokens::UserAgent, 512))
                    .col(string_len_null(RefreshTokens::ClientIp, 45))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::LastUsedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::IdleExpiresAt))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RevokedAt))
                    .col(uuid_null(RefreshTokens::ReplacedBy))
                    .foreign_key(&mut tenant_fk(RefreshTokens::Table, RefreshTokens::TenantId))
                    .foreign_key(&mut scoped_fk(
                        RefreshTokens::Table,
                        RefreshTokens::TenantId,
                        RefreshTokens::UserId,
                        Users::Table,
                        Users::TenantId,
                        Users::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "refresh_tokens_tenant_id_user_id",
                    RefreshTokens::Table,
                    vec![RefreshTokens::TenantId, RefreshTokens::UserId],
                ),
            )
            .await?;
        manager
            .create_index(
                index(
                    "refresh_tokens_tenant_id_family_id",
                    RefreshTokens::Table,
                    vec![RefreshTokens::TenantId, RefreshTokens::FamilyId],
                ),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(pk_uuid(ApiKeys::Id))
                    .col(uuid(ApiKeys::TenantId))
                    .col(string_len(ApiKeys::Name, 100))
                    .col(string_len_uniq(ApiKeys::Prefix, 32))
                    .col(string_len(ApiKeys::SecretHash, 64))
                    .col(
                        string_len(ApiKeys::Scope, 16)
                            .check(Expr::col(ApiKeys::Scope).is_in(["READ", "READ_WRITE"])),
                    )
                    .col(uuid(ApiKeys::CreatedBy))
                    .col(timestamp_with_time_zone_null(ApiKeys::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                    .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                    .foreign_key(&mut tenant_fk(ApiKeys::Table, ApiKeys::TenantId))
                    .foreign_key(&mut scoped_fk(
                        ApiKeys::Table,
                        ApiKeys::TenantId,
                        ApiKeys::CreatedBy,
                        Users::Table,
                        Users::TenantId,
                        Users::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(tenant_index("api_keys_tenant_id_id", ApiKeys::Table, ApiKeys::TenantId, ApiKeys::Id))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Clients::Table)
                    .col(pk_uuid(Clients::Id))
                    .col(uuid(Clients::TenantId))
                    .col(string_len(Clients::Name, 200))
                    .col(string_len_null(Clients::Email, 320))
                    .col(string_len_null(Clients::Phone, 32))
                    .col(
                        string_len(Clients::Status, 16)
                            .check(Expr::col(Clients::Status).is_in(["ACTIVE", "PROSPECT", "ARCHIVED"])),
                    )
                    .col(text_null(Clients::Notes))
                    .col(uuid_null(Clients::CreatedBy))
                    .col(timestamp_with_time_zone(Clients::CreatedAt))
                    .col(timestamp_with_time_zone(Clients::UpdatedAt))
                    .foreign_key(&mut tenant_fk(Clients::Table, Clients::TenantId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(tenant_index("clients_tenant_id_id", Clients::Table, Clients::TenantId, Clients::Id))
            .await?;
        manager
            .create_index(index(
                "clients_tenant_id_created_at",
                Clients::Table,
                vec![Clients::TenantId, Clients::CreatedAt, Clients::Id],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Projects::Table)
                    .col(pk_uuid(Projects::Id))
                    .col(uuid(Projects::TenantId))
                    .col(uuid(Projects::ClientId))
                    .col(string_len(Projects::Name, 200))
                    .col(text_null(Projects::Description))
                    .col(string_len(Projects::Status, 16).check(
                        Expr::col(Projects::Status).is_in(["PLANNED", "ACTIVE", "ON_HOLD", "DONE", "CANCELLED"]),
                    ))
                    .col(date_null(Projects::DueDate))
                    .col(uuid_null(Projects::CreatedBy))
                    .col(timestamp_with_time_zone(Projects::CreatedAt))
                    .col(timestamp_with_time_zone(Projects::UpdatedAt))
                    .foreign_key(&mut tenant_fk(Projects::Table, Projects::TenantId))
                    .foreign_key(&mut scoped_fk(
                        Projects::Table,
                        Projects::TenantId,
                        Projects::ClientId,
                        Clients::Table,
                        Clients::TenantId,
                        Clients::Id,
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(tenant_index("projects_tenant_id_id", Projects::Table, Projects::TenantId, Projects::Id))
            .await?;
        manager
            .create_index(index(
                "projects_tenant_id_client_id",
                Projects::Table,
                vec![Projects::TenantId, Projects::ClientId, Projects::CreatedAt],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Documents::Table)
                    .col(pk_uuid(Documents::Id))
                    .col(uuid(Documents::TenantId))
                    .col(uuid_null(Documents::ProjectId))
                    .col(uuid_null(Documents::ClientId))
                    .col(string_len(Documents::Name, 255))
                    .col(string_len(Documents::ContentType, 255))
                    .col(big_integer(Documents::SizeBytes))
                    .col(string_len(Documents::ChecksumSha256, 64))
                    .col(integer(Documents::CurrentVersion).default(1))
                    .col(uuid_null(Documents::UploadedBy))
                    .col(uuid_null(Documents::CreatedBy))
                    .col(timestamp_with_time_zone(Documents::CreatedAt))
                    .col(timestamp_with_time_zone(Documents::UpdatedAt))
                    .foreign_key(&mut tenant_fk(Documents::Table, Documents::TenantId))
                    .foreign_key(&mut scoped_fk(
                        Documents::Table,
                        Documents::TenantId,
                        Documents::ProjectId,
                        Projects::Table,
                        Projects::TenantId,
                        Projects::Id,
                        ForeignKeyAction::Restrict,
                    ))
                    .foreign_key(&mut scoped_fk(
                        Documents::Table,
                        Documents::TenantId,
                        Documents::ClientId,
                        Clients::Table,
                        Clients::TenantId,
                        Clients::Id,
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(tenant_index("documents_tenant_id_id", Documents::Table, Documents::TenantId, Documents::Id))
            .await?;
        manager
            .create_index(index(
                "documents_tenant_id_project_id",
                Documents::Table,
                vec![Documents::TenantId, Documents::ProjectId, Documents::CreatedAt],
            ))
            .await?;
        manager
            .create_index(index(
                "documents_tenant_id_client_id",
                Documents::Table,
                vec![Documents::TenantId, Documents::ClientId],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DocumentVersions::Table)
                    .col(pk_uuid(DocumentVersions::Id))
                    .col(uuid(DocumentVersions::TenantId))
                    .col(uuid(DocumentVersions::DocumentId))
                    .col(integer(DocumentVersions::Version))
                    .col(string_len_uniq(DocumentVersions::StorageKey, 512))
                    .col(string_len(DocumentVersions::ContentType, 255))
                    .col(big_integer(DocumentVersions::SizeBytes))
                    .col(string_len(DocumentVersions::ChecksumSha256, 64))
                    .col(uuid_null(DocumentVersions::UploadedBy))
                    .col(timestamp_with_time_zone(DocumentVersions::CreatedAt))
                    .foreign_key(&mut tenant_fk(DocumentVersions::Table, DocumentVersions::TenantId))
                    .foreign_key(&mut scoped_fk(
                        DocumentVersions::Table,
                        DocumentVersions::TenantId,
                        DocumentVersions::DocumentId,
                        Documents::Table,
                        Documents::TenantId,
                        Documents::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "document_versions_tenant_id_document_id_version",
                    DocumentVersions::Table,
                    vec![DocumentVersions::TenantId, DocumentVersions::DocumentId, DocumentVersions::Version],
                )
                .unique()
                .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(pk_uuid(AuditEvents::Id))
                    .col(uuid(AuditEvents::TenantId))
                    .col(uuid_null(AuditEvents::ActorUserId))
                    .col(uuid_null(AuditEvents::ActorApiKeyId))
                    .col(string_len(AuditEvents::Action, 64))
                    .col(string_len(AuditEvents::TargetType, 64))
                    .col(uuid_null(AuditEvents::TargetId))
                    .col(string_len(AuditEvents::RequestId, 128))
                    .col(json_binary_null(AuditEvents::Changes))
                    .col(timestamp_with_time_zone(AuditEvents::CreatedAt))
                    .foreign_key(&mut tenant_fk(AuditEvents::Table, AuditEvents::TenantId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "audit_events_tenant_id_created_at",
                AuditEvents::Table,
                vec![AuditEvents::TenantId, AuditEvents::CreatedAt, AuditEvents::Id],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditEvents::Table.into_iden(),
            DocumentVersions::Table.into_iden(),
            Documents::Table.into_iden(),
            Projects::Table.into_iden(),
            Clients::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Users::Table.into_iden(),
            PlatformAdmins::Table.into_iden(),
            Tenants::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
