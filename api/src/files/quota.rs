//! The agency's storage quota: `tenants.storage_used_bytes` is what its
//! versions hold plus what unconfirmed direct-upload grants have reserved.
//! Charges are conditional updates, so concurrent uploads cannot overshoot
//! together.

use entity::{document_versions, tenants, upload_reservations};
use sea_orm::{
    ColumnTrait as _, EntityTrait as _, QueryFilter as _,
    sea_query::{Expr, ExprTrait as _, Func, IntoColumnRef, IntoTableRef, Query, SelectStatement},
};

use super::Files;
use crate::{
    error::{ApiError, ApiResult},
    store::TenantDb,
};

/// Takes `size` bytes from the tenant's quota, or refuses.
pub async fn charge(db: &TenantDb, size: u64) -> ApiResult<()> {
    let size = i64::try_from(size).map_err(ApiError::internal)?;
    let charged = tenants::Entity::update_many()
        .col_expr(tenants::Column::StorageUsedBytes, Expr::col(tenants::Column::StorageUsedBytes).add(size))
        .filter(tenants::Column::Id.eq(db.tenant()))
        .filter(Expr::col(tenants::Column::StorageUsedBytes).add(size).lte(Expr::col(tenants::Column::StorageQuotaBytes)))
        .exec(db)
        .await?;
    if charged.rows_affected == 1 {
        return Ok(());
    }
    let (quota, used) = usage(db).await?;
    Err(ApiError::QuotaExceeded { quota, used, needed: size })
}

/// Gives `size` bytes back (a reservation whose grant expired unused).
pub async fn refund(db: &TenantDb, size: i64) -> ApiResult<()> {
    tenants::Entity::update_many()
        .col_expr(tenants::Column::StorageUsedBytes, Expr::col(tenants::Column::StorageUsedBytes).sub(size))
        .filter(tenants::Column::Id.eq(db.tenant()))
        .exec(db)
        .await?;
    Ok(())
}

/// The tenant's (quota, used) bytes.
pub async fn usage(db: &TenantDb) -> ApiResult<(i64, i64)> {
    let t = tenants::Entity::find_by_id(db.tenant()).one(db).await?.ok_or(ApiError::TenantNotFound)?;
    Ok((t.storage_quota_bytes, t.storage_used_bytes))
}

/// Sets the tenant's used bytes to what its versions hold and its
/// unconfirmed reservations keep (after deletes, including cascades). A
/// confirmed reservation counts through its version.
pub async fn recount_usage(db: &TenantDb) -> ApiResult<()> {
    let held = total(document_versions::Column::SizeBytes, document_versions::Entity, document_versions::Column::TenantId, db);
    let reserved = total(upload_reservations::Column::SizeBytes, upload_reservations::Entity, upload_reservations::Column::TenantId, db)
        .and_where(Expr::col(upload_reservations::Column::ConfirmedAt).is_null())
        .to_owned();
    tenants::Entity::update_many()
        .col_expr(
            tenants::Column::StorageUsedBytes,
            Expr::SubQuery(None, Box::new(held.into())).add(Expr::SubQuery(None, Box::new(reserved.into()))),
        )
        .filter(tenants::Column::Id.eq(db.tenant()))
        .exec(db)
        .await?;
    Ok(())
}

/// `SUM(size)` of the tenant's rows of `table`, 0 when there are none.
fn total(size: impl IntoColumnRef, table: impl IntoTableRef, tenant: impl IntoColumnRef, db: &TenantDb) -> SelectStatement {
    Query::select()
        .expr(Func::coalesce([Expr::col(size).sum(), Expr::val(0i64)]))
        .from(table)
        .and_where(Expr::col(tenant).eq(db.tenant()))
        .to_owned()
}

/// Refuses a file larger than `storage.max_file_bytes`.
pub fn check_size(files: &Files, size: u64) -> ApiResult<()> {
    let max = files.storage.max_file_bytes;
    if size > max {
        return Err(ApiError::PayloadTooLarge(format!("the file has {size} bytes and the limit is {max}")));
    }
    Ok(())
}

/// Refuses before anything is recorded: too large, or past the quota.
pub async fn precheck(files: &Files, db: &TenantDb, size: u64) -> ApiResult<()> {
    check_size(files, size)?;
    let (quota, used) = usage(db).await?;
    let size = i64::try_from(size).map_err(ApiError::internal)?;
    if used.saturating_add(size) > quota {
        return Err(ApiError::QuotaExceeded { quota, used, needed: size });
    }
    Ok(())
}
