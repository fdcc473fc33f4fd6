//! Clients of one tenant.

use chrono::Utc;
use entity::{clients, documents, projects};
use sea_orm::{
    ActiveModelTrait as _, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait as _, QueryFilter,
    sea_query::ExprTrait as _,
};
use uuid::Uuid;

use super::{
    TenantDb,
    page::{Page, PageArgs},
};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Default)]
pub struct Filter {
    pub status: Option<String>,
    pub common: super::Common,
}

pub async fn create(db: &TenantDb, mut model: clients::ActiveModel, created_by: Option<Uuid>) -> ApiResult<clients::Model> {
    let now = Utc::now();
    model.id = Set(Uuid::now_v7());
    model.tenant_id = Set(db.tenant());
    model.created_by = Set(created_by);
    model.created_at = Set(now);
    model.updated_at = Set(now);
    Ok(clients::Entity::insert(model).exec_with_returning(db).await?)
}

pub async fn by_id(db: &TenantDb, id: Uuid) -> ApiResult<Option<clients::Model>> {
    Ok(clients::Entity::find_by_id(id).filter(clients::Column::TenantId.eq(db.tenant())).one(db).await?)
}

pub async fn update(db: &TenantDb, mut model: clients::ActiveModel) -> ApiResult<clients::Model> {
    model.updated_at = Set(Utc::now());
    Ok(model.update(db).await?)
}

/// Deletes a client. With projects (or documents) it is a conflict unless
/// `cascade`, which removes them too. Returns whether it existed.
pub async fn delete(db: &TenantDb, id: Uuid, cascade: bool) -> ApiResult<bool> {
    let t = db.tenant();
    let projects = projects::Entity::find()
        .filter(projects::Column::TenantId.eq(t))
        .filter(projects::Column::ClientId.eq(id))
        .count(db)
        .await?;
    let docs = documents::Entity::find()
        .filter(documents::Column::TenantId.eq(t))
        .filter(documents::Column::ClientId.eq(id))
        .count(db)
        .await?;
    if (projects > 0 || docs > 0) && !cascade {
        return Err(ApiError::Conflict(format!(
            "this client still has {projects} project(s) and {docs} document(s); delete them first or pass cascade: true"
        )));
    }
    if cascade {
        let project_ids: Vec<Uuid> = projects::Entity::find()
            .filter(projects::Column::TenantId.eq(t))
            .filter(projects::Column::ClientId.eq(id))
            .all(db)
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect();
        documents::Entity::delete_many()
            .filter(documents::Column::TenantId.eq(t))
            .filter(documents::Column::ClientId.eq(id).or(documents::Column::ProjectId.is_in(project_ids)))
            .exec(db)
            .await?;
        projects::Entity::delete_many()
            .filter(projects::Column::TenantId.eq(t))
            .filter(projects::Column::ClientId.eq(id))
            .exec(db)
            .await?;
    }
    let gone = clients::Entity::delete_many()
        .filter(clients::Column::TenantId.eq(t))
        .filter(clients::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(gone.rows_affected == 1)
}

/// A page of lean rows (see [`super::rows`]).
pub async fn list(db: &TenantDb, filter: &Filter, page: &PageArgs) -> ApiResult<Page<super::rows::ClientRow>> {
    let window = page.window()?;
    let mut q = clients::Entity::find().filter(clients::Column::TenantId.eq(db.tenant()));
    if let Some(s) = &filter.status {
        q = q.filter(clients::Column::Status.eq(s.as_str()));
    }
    let q = filter.common.apply(q, clients::Column::Name, clients::Column::CreatedAt);
    let rows = super::rows::page(db, window.apply(q, clients::Column::Id)).await?;
    Ok(window.finish(rows))
}
