//! Users of one tenant. Every function takes the tenant's `TenantDb` and
//! filters by its tenant as well, so SQLite (no RLS) is scoped the same way.

use chrono::Utc;
use entity::users;
use sea_orm::{
    ActiveModelTrait as _, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder as _,
    QuerySelect as _,
};
use uuid::Uuid;

use super::TenantDb;
use crate::{
    roles::Role,
    error::{ApiError, ApiResult},
};

const EMAIL_TAKEN: &str = "a user with this email already exists in this agency";

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
}

/// Lower-cased and trimmed; refused unless it looks like an address.
pub fn normalize_email(email: &str) -> ApiResult<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && local.len() <= 64 && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err(ApiError::BadUserInput { field: "email", message: "must be an email address such as ana@acme.com".into() })
    }
}

pub async fn create(db: &TenantDb, new: NewUser) -> ApiResult<users::Model> {
    let now = Utc::now();
    let model = users::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(db.tenant()),
        email: Set(new.email),
        password_hash: Set(new.password_hash),
        first_name: Set(new.first_name),
        last_name: Set(new.last_name),
        role: Set(new.role.as_str().into()),
        is_active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
    };
    users::Entity::insert(model).exec_with_returning(db).await.map_err(|e| super::conflict_on_unique(e, EMAIL_TAKEN))
}

pub async fn by_id(db: &TenantDb, id: Uuid) -> ApiResult<Option<users::Model>> {
    Ok(users::Entity::find_by_id(id).filter(users::Column::TenantId.eq(db.tenant())).one(db).await?)
}

pub async fn list(db: &TenantDb) -> ApiResult<Vec<users::Model>> {
    Ok(users::Entity::find()
        .filter(users::Column::TenantId.eq(db.tenant()))
        .order_by_asc(users::Column::CreatedAt)
        .order_by_asc(users::Column::Id)
        .all(db)
        .await?)
}

/// The tenant's active owners, locked until the transaction ends (on
/// PostgreSQL; SQLite has one writer anyway), so two concurrent demotions
/// cannot both see "another owner remains".
pub async fn lock_active_owners(db: &TenantDb) -> ApiResult<Vec<Uuid>> {
    Ok(users::Entity::find()
        .filter(users::Column::TenantId.eq(db.tenant()))
        .filter(users::Column::Role.eq(Role::Owner.as_str()))
        .filter(users::Column::IsActive.eq(true))
        .lock_exclusive()
        .all(db)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect())
}

pub async fn save(db: &TenantDb, mut model: users::ActiveModel) -> ApiResult<users::Model> {
    model.updated_at = Set(Utc::now());
    model.update(db).await.map_err(|e| super::conflict_on_unique(e, EMAIL_TAKEN))
}
