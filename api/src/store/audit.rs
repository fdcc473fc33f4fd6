//! The audit trail: one event per change, written through the same
//! `TenantDb` — so in the same transaction — as the change itself.

use chrono::{DateTime, Utc};
use entity::audit_events as ae;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{
    TenantDb,
    page::{Page, PageArgs},
};
use crate::error::ApiResult;

#[derive(Debug)]
pub struct Event<'a> {
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: Option<Uuid>,
    /// The fields that changed, as `{ field: new value }`.
    pub changes: Option<serde_json::Value>,
}

/// `actor`: the acting user and/or API key (`Principal::actor`). Returns
/// the new event's id.
pub async fn record(db: &TenantDb, actor: (Option<Uuid>, Option<Uuid>), request_id: &str, event: Event<'_>) -> ApiResult<Uuid> {
    let (user, key) = actor;
    let id = Uuid::now_v7();
    ae::Entity::insert(ae::ActiveModel {
        id: Set(id),
        tenant_id: Set(db.tenant()),
        actor_user_id: Set(user),
        actor_api_key_id: Set(key),
        action: Set(event.action.into()),
        target_type: Set(event.target_type.into()),
        target_id: Set(event.target_id),
        request_id: Set(request_id.chars().take(128).collect()),
        changes: Set(event.changes),
        created_at: Set(Utc::now()),
    })
    .exec_without_returning(db)
    .await?;
    Ok(id)
}

#[derive(Debug, Default)]
pub struct Filter {
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

pub async fn list(db: &TenantDb, filter: &Filter, page: &PageArgs) -> ApiResult<Page<ae::Model>> {
    let window = page.window()?;
    let mut q = ae::Entity::find().filter(ae::Column::TenantId.eq(db.tenant()));
    if let Some(a) = &filter.action {
        q = q.filter(ae::Column::Action.eq(a.as_str()));
    }
    if let Some(t) = &filter.target_type {
        q = q.filter(ae::Column::TargetType.eq(t.as_str()));
    }
    if let Some(id) = filter.target_id {
        q = q.filter(ae::Column::TargetId.eq(id));
    }
    if let Some(u) = filter.actor_user_id {
        q = q.filter(ae::Column::ActorUserId.eq(u));
    }
    if let Some(t) = filter.created_after {
        q = q.filter(ae::Column::CreatedAt.gte(t));
    }
    if let Some(t) = filter.created_before {
        q = q.filter(ae::Column::CreatedAt.lt(t));
    }
    let rows = window.apply(q, ae::Column::Id).all(db).await?;
    Ok(window.finish(rows))
}

pub async fn by_id(db: &TenantDb, id: Uuid) -> ApiResult<Option<ae::Model>> {
    Ok(ae::Entity::find_by_id(id).filter(ae::Column::TenantId.eq(db.tenant())).one(db).await?)
}
