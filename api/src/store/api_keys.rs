//! API keys of one tenant.

use chrono::{DateTime, Utc};
use entity::api_keys;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder as _, sea_query::Expr};
use uuid::Uuid;

use super::TenantDb;
use crate::{
    roles::Scope,
    error::ApiResult,
};

pub async fn create(
    db: &TenantDb,
    name: String,
    scope: Scope,
    expires_at: Option<DateTime<Utc>>,
    created_by: Uuid,
    prefix: &str,
    secret_hash: &str,
) -> ApiResult<api_keys::Model> {
    Ok(api_keys::Entity::insert(api_keys::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(db.tenant()),
        name: Set(name),
        prefix: Set(prefix.to_owned()),
        secret_hash: Set(secret_hash.to_owned()),
        scope: Set(scope.as_str().into()),
        created_by: Set(created_by),
        expires_at: Set(expires_at),
        last_used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(Utc::now()),
    })
    .exec_with_returning(db)
    .await?)
}

pub async fn by_prefix(db: &TenantDb, prefix: &str) -> ApiResult<Option<api_keys::Model>> {
    Ok(api_keys::Entity::find()
        .filter(api_keys::Column::TenantId.eq(db.tenant()))
        .filter(api_keys::Column::Prefix.eq(prefix))
        .one(db)
        .await?)
}

pub async fn by_id(db: &TenantDb, id: Uuid) -> ApiResult<Option<api_keys::Model>> {
    Ok(api_keys::Entity::find_by_id(id).filter(api_keys::Column::TenantId.eq(db.tenant())).one(db).await?)
}

pub async fn list(db: &TenantDb) -> ApiResult<Vec<api_keys::Model>> {
    Ok(api_keys::Entity::find()
        .filter(api_keys::Column::TenantId.eq(db.tenant()))
        .order_by_asc(api_keys::Column::CreatedAt)
        .all(db)
        .await?)
}

pub async fn revoke(db: &TenantDb, id: Uuid) -> ApiResult<bool> {
    Ok(api_keys::Entity::update_many()
        .col_expr(api_keys::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(api_keys::Column::TenantId.eq(db.tenant()))
        .filter(api_keys::Column::Id.eq(id))
        .filter(api_keys::Column::RevokedAt.is_null())
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

pub async fn touch(db: &TenantDb, id: Uuid) -> ApiResult<()> {
    api_keys::Entity::update_many()
        .col_expr(api_keys::Column::LastUsedAt, Expr::value(Utc::now()))
        .filter(api_keys::Column::TenantId.eq(db.tenant()))
        .filter(api_keys::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
