//! Platform administration: administrators (outside tenancy) and the
//! tenant list they manage.

use chrono::Utc;
use entity::{platform_admins, tenants};
use sea_orm::{
    ActiveModelTrait as _, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder as _,
};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

pub async fn create_admin(conn: &impl ConnectionTrait, email: String, password_hash: String) -> ApiResult<platform_admins::Model> {
    let now = Utc::now();
    platform_admins::Entity::insert(platform_admins::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email),
        password_hash: Set(password_hash),
        is_active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_with_returning(conn)
    .await
    .map_err(|e| super::conflict_on_unique(e, "a platform administrator with this email exists already"))
}

pub async fn admin_by_email(conn: &impl ConnectionTrait, email: &str) -> ApiResult<Option<platform_admins::Model>> {
    Ok(platform_admins::Entity::find().filter(platform_admins::Column::Email.eq(email)).one(conn).await?)
}

pub async fn set_admin_active(conn: &impl ConnectionTrait, id: Uuid, active: bool) -> ApiResult<platform_admins::Model> {
    let model = platform_admins::Entity::find_by_id(id).one(conn).await?.ok_or(ApiError::NotFound("platform administrator"))?;
    let mut m: platform_admins::ActiveModel = model.into();
    m.is_active = Set(active);
    m.updated_at = Set(Utc::now());
    Ok(m.update(conn).await?)
}

pub async fn tenants(conn: &impl ConnectionTrait) -> ApiResult<Vec<tenants::Model>> {
    Ok(tenants::Entity::find().order_by_asc(tenants::Column::CreatedAt).order_by_asc(tenants::Column::Id).all(conn).await?)
}

pub async fn set_tenant_active(conn: &impl ConnectionTrait, id: Uuid, active: bool) -> ApiResult<tenants::Model> {
    let model = tenants::Entity::find_by_id(id).one(conn).await?.ok_or(ApiError::NotFound("tenant"))?;
    let mut m: tenants::ActiveModel = model.into();
    m.is_active = Set(active);
    m.updated_at = Set(Utc::now());
    Ok(m.update(conn).await?)
}
