//! Users of one tenant.

use entity::users;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::TenantDb;

/// The users of `db`'s tenant among `ids`; others' ids simply find nothing.
pub async fn by_ids(db: &TenantDb, ids: &[Uuid]) -> Result<Vec<users::Model>, DbErr> {
    users::Entity::find()
        .filter(users::Column::TenantId.eq(db.tenant()))
        .filter(users::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await
}
