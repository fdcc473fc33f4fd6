//! Quota reservations of direct-upload grants, one per grant, keyed by the id
//! of the version the upload will become. The quota itself is charged and
//! given back by `files::quota`; these rows say what is held and until when.

use chrono::{DateTime, Utc};
use entity::upload_reservations as ur;
use sea_orm::{ActiveValue::Set, ColumnTrait as _, EntityTrait as _, QueryFilter as _, sea_query::Expr};
use uuid::Uuid;

use super::TenantDb;
use crate::error::{ApiError, ApiResult};

pub async fn reserve(db: &TenantDb, id: Uuid, size: u64, expires_at: DateTime<Utc>) -> ApiResult<()> {
    ur::Entity::insert(ur::ActiveModel {
        id: Set(id),
        tenant_id: Set(db.tenant()),
        size_bytes: Set(i64::try_from(size).map_err(ApiError::internal)?),
        expires_at: Set(expires_at),
        confirmed_at: Set(None),
        created_at: Set(Utc::now()),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

pub async fn by_id(db: &TenantDb, id: Uuid) -> ApiResult<Option<ur::Model>> {
    Ok(ur::Entity::find_by_id(id).filter(ur::Column::TenantId.eq(db.tenant())).one(db).await?)
}

/// Marks the reservation confirmed, if it is there and not yet confirmed.
/// One conditional update: of two concurrent confirmations one wins, and on
/// PostgreSQL the other waits for it and then finds nothing to mark.
pub async fn confirm(db: &TenantDb, id: Uuid) -> ApiResult<bool> {
    let done = ur::Entity::update_many()
        .col_expr(ur::Column::ConfirmedAt, Expr::value(Utc::now()))
        .filter(ur::Column::TenantId.eq(db.tenant()))
        .filter(ur::Column::Id.eq(id))
        .filter(ur::Column::ConfirmedAt.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Reservations whose grant expired before `before`.
pub async fn expired(db: &TenantDb, before: DateTime<Utc>) -> ApiResult<Vec<ur::Model>> {
    Ok(ur::Entity::find()
        .filter(ur::Column::TenantId.eq(db.tenant()))
        .filter(ur::Column::ExpiresAt.lt(before))
        .all(db)
        .await?)
}

/// Removes a reservation; `false` when another pass already did.
pub async fn remove(db: &TenantDb, id: Uuid) -> ApiResult<bool> {
    let gone = ur::Entity::delete_many()
        .filter(ur::Column::TenantId.eq(db.tenant()))
        .filter(ur::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(gone.rows_affected == 1)
}
