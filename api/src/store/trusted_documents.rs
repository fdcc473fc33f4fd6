//! Trusted documents of one tenant: manifests (versioned; the latest is the
//! active one), their operations, and the mode for API keys.

use chrono::Utc;
use entity::{trusted_document_manifests as manifests, trusted_document_settings as settings, trusted_documents as documents};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder as _, QuerySelect as _, sea_query::OnConflict,
};
use uuid::Uuid;

use super::TenantDb;
use crate::error::ApiResult;

/// One operation to store.
#[derive(Debug, Clone)]
pub struct NewDocument {
    pub document_id: String,
    pub operation_name: Option<String>,
    pub operation_type: Option<String>,
    pub body: String,
}

/// Who uploaded a manifest.
#[derive(Debug, Clone)]
pub struct Uploader {
    pub user_id: Option<Uuid>,
    pub label: String,
}

/// Rows per INSERT: far below both backends' bound on parameters.
const CHUNK: usize = 500;

/// The active manifest: the latest version.
pub async fn latest(db: &TenantDb) -> ApiResult<Option<manifests::Model>> {
    Ok(manifests::Entity::find()
        .filter(manifests::Column::TenantId.eq(db.tenant()))
        .order_by_desc(manifests::Column::Version)
        .limit(1)
        .one(db)
        .await?)
}

/// Every manifest, the latest first.
pub async fn list(db: &TenantDb) -> ApiResult<Vec<manifests::Model>> {
    Ok(manifests::Entity::find()
        .filter(manifests::Column::TenantId.eq(db.tenant()))
        .order_by_desc(manifests::Column::Version)
        .all(db)
        .await?)
}

/// Stores a manifest as the next version with its operations. Two uploads
/// at once cannot take the same version: the second fails on the unique
/// `(tenant_id, version)` index.
pub async fn insert(db: &TenantDb, format: &str, uploader: Uploader, operations: Vec<NewDocument>) -> ApiResult<manifests::Model> {
    let tenant = db.tenant();
    let version = latest(db).await?.map_or(1, |m| m.version + 1);
    let count = i32::try_from(operations.len()).unwrap_or(i32::MAX);
    let manifest = manifests::Entity::insert(manifests::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant),
        version: Set(version),
        format: Set(format.into()),
        operation_count: Set(count),
        uploaded_by_user_id: Set(uploader.user_id),
        uploaded_by: Set(uploader.label),
        created_at: Set(Utc::now()),
    })
    .exec_with_returning(db)
    .await
    .map_err(|e| super::conflict_on_unique(e, "another manifest was uploaded at the same moment; upload again"))?;
    let mut rows = operations.into_iter().map(|op| documents::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant),
        manifest_id: Set(manifest.id),
        document_id: Set(op.document_id),
        operation_name: Set(op.operation_name),
        operation_type: Set(op.operation_type),
        body: Set(op.body),
    });
    loop {
        let chunk: Vec<_> = rows.by_ref().take(CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        documents::Entity::insert_many(chunk).exec_without_returning(db).await?;
    }
    Ok(manifest)
}

/// The operations of a manifest: `(id, body)`.
pub async fn documents(db: &TenantDb, manifest: Uuid) -> ApiResult<Vec<(String, String)>> {
    Ok(documents::Entity::find()
        .select_only()
        .column(documents::Column::DocumentId)
        .column(documents::Column::Body)
        .filter(documents::Column::TenantId.eq(db.tenant()))
        .filter(documents::Column::ManifestId.eq(manifest))
        .into_tuple()
        .all(db)
        .await?)
}

/// The mode for API keys, when one was ever set.
pub async fn mode(db: &TenantDb) -> ApiResult<Option<settings::Model>> {
    Ok(settings::Entity::find().filter(settings::Column::TenantId.eq(db.tenant())).one(db).await?)
}

pub async fn set_mode(db: &TenantDb, mode: &str, by: Option<Uuid>) -> ApiResult<settings::Model> {
    let row = settings::ActiveModel {
        tenant_id: Set(db.tenant()),
        mode: Set(mode.into()),
        updated_by_user_id: Set(by),
        updated_at: Set(Utc::now()),
    };
    settings::Entity::insert(row)
        .on_conflict(
            OnConflict::column(settings::Column::TenantId)
                .update_columns([settings::Column::Mode, settings::Column::UpdatedByUserId, settings::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    self::mode(db).await?.ok_or_else(|| crate::error::ApiError::internal(anyhow::anyhow!("the trusted-documents mode just written is missing")))
}
