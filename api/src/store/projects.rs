//! Projects of one tenant.

use chrono::Utc;
use entity::{documents, projects};
use sea_orm::{
    ActiveModelTrait as _, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait as _, QueryFilter, QuerySelect as _,
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
    pub client_id: Option<Uuid>,
    pub common: super::Common,
}

/// The client must be one of this tenant's: another tenant's id is "not
/// found", like a missing one.
pub async fn create(db: &TenantDb, mut model: projects::ActiveModel, client: Uuid, created_by: Option<Uuid>) -> ApiResult<projects::Model> {
    super::clients::by_id(db, client).await?.ok_or(ApiError::NotFound("client"))?;
    let now = Utc::now();
    model.id = Set(Uuid::now_v7());
    model.tenant_id = Set(db.tenant());
    model.client_id = Set(client);
    model.created_by = Set(created_by);
    model.created_at = Set(now);
    model.updated_at = Set(now);
    Ok(projects::Entity::insert(model).exec_with_returning(db).await?)
}

pub async fn by_id(db: &TenantDb, id: Uuid) -> ApiResult<Option<projects::Model>> {
    Ok(projects::Entity::find_by_id(id).filter(projects::Column::TenantId.eq(db.tenant())).one(db).await?)
}

pub async fn update(db: &TenantDb, mut model: projects::ActiveModel) -> ApiResult<projects::Model> {
    model.updated_at = Set(Utc::now());
    Ok(model.update(db).await?)
}

/// Deletes a project; with documents it is a conflict unless `cascade`.
pub async fn delete(db: &TenantDb, id: Uuid, cascade: bool) -> ApiResult<bool> {
    let t = db.tenant();
    let docs = documents::Entity::find()
        .filter(documents::Column::TenantId.eq(t))
        .filter(documents::Column::ProjectId.eq(id))
        .count(db)
        .await?;
    if docs > 0 && !cascade {
        return Err(ApiError::Conflict(format!(
            "this project still has {docs} document(s); delete them first or pass cascade: true"
        )));
    }
    if cascade {
        documents::Entity::delete_many()
            .filter(documents::Column::TenantId.eq(t))
            .filter(documents::Column::ProjectId.eq(id))
            .exec(db)
            .await?;
    }
    let gone = projects::Entity::delete_many()
        .filter(projects::Column::TenantId.eq(t))
        .filter(projects::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(gone.rows_affected == 1)
}

/// A page of lean rows (see [`super::rows`]).
pub async fn list(db: &TenantDb, filter: &Filter, page: &PageArgs) -> ApiResult<Page<super::rows::ProjectRow>> {
    let window = page.window()?;
    let mut q = projects::Entity::find().filter(projects::Column::TenantId.eq(db.tenant()));
    if let Some(s) = &filter.status {
        q = q.filter(projects::Column::Status.eq(s.as_str()));
    }
    if let Some(c) = filter.client_id {
        q = q.filter(projects::Column::ClientId.eq(c));
    }
    let q = filter.common.apply(q, projects::Column::Name, projects::Column::CreatedAt);
    let rows = super::rows::page(db, window.apply(q, projects::Column::Id)).await?;
    Ok(window.finish(rows))
}

/// The ids of `client`'s projects (what a cascading delete takes with it).
pub async fn ids_of_client(db: &TenantDb, client: Uuid) -> ApiResult<Vec<Uuid>> {
    Ok(projects::Entity::find()
        .filter(projects::Column::TenantId.eq(db.tenant()))
        .filter(projects::Column::ClientId.eq(client))
        .select_only()
        .column(projects::Column::Id)
        .into_tuple::<Uuid>()
        .all(db)
        .await?)
}
