//! Document records of one tenant (the bytes arrive with object storage).

use chrono::Utc;
use entity::{document_versions, documents, projects};
use sea_orm::{ActiveModelTrait as _, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect as _};
use uuid::Uuid;

use super::{
    TenantDb,
    page::{Page, PageArgs},
};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Default)]
pub struct Filter {
    pub project_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    pub common: super::Common,
}

/// A document is attached to exactly one of a project or a client of this
/// tenant.
pub async fn check_owner(db: &TenantDb, project: Option<Uuid>, client: Option<Uuid>) -> ApiResult<()> {
    match (project, client) {
        (Some(p), None) => {
            super::projects::by_id(db, p).await?.ok_or(ApiError::NotFound("project"))?;
        }
        (None, Some(c)) => {
            super::clients::by_id(db, c).await?.ok_or(ApiError::NotFound("client"))?;
        }
        _ => {
            return Err(ApiError::BadUserInput {
                field: "projectId",
                message: "give exactly one of projectId and clientId".into(),
            });
        }
    }
    Ok(())
}

pub async fn by_id(db: &TenantDb, id: Uuid) -> ApiResult<Option<documents::Model>> {
    Ok(documents::Entity::find_by_id(id).filter(documents::Column::TenantId.eq(db.tenant())).one(db).await?)
}

/// Inserts a document. Its owner (`"project"` or `"client"`) was checked,
/// but a concurrent delete may still win: that is NOT_FOUND, not INTERNAL.
pub async fn insert(db: &TenantDb, model: documents::ActiveModel, owner: &'static str) -> ApiResult<documents::Model> {
    documents::Entity::insert(model).exec_with_returning(db).await.map_err(|e| super::not_found_on_foreign_key(e, owner))
}

/// Inserts a version of a document (NOT_FOUND if the document is gone).
pub async fn insert_version(db: &TenantDb, model: document_versions::ActiveModel) -> ApiResult<()> {
    document_versions::Entity::insert(model)
        .exec_without_returning(db)
        .await
        .map_err(|e| super::not_found_on_foreign_key(e, "document"))?;
    Ok(())
}

/// The document, locked until the transaction ends (on PostgreSQL; SQLite
/// has one writer anyway).
pub async fn by_id_for_update(db: &TenantDb, id: Uuid) -> ApiResult<Option<documents::Model>> {
    Ok(documents::Entity::find_by_id(id)
        .filter(documents::Column::TenantId.eq(db.tenant()))
        .lock_exclusive()
        .one(db)
        .await?)
}

pub async fn update(db: &TenantDb, mut model: documents::ActiveModel) -> ApiResult<documents::Model> {
    model.updated_at = Set(Utc::now());
    Ok(model.update(db).await?)
}

pub async fn delete(db: &TenantDb, id: Uuid) -> ApiResult<bool> {
    let gone = documents::Entity::delete_many()
        .filter(documents::Column::TenantId.eq(db.tenant()))
        .filter(documents::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(gone.rows_affected == 1)
}

/// A page of lean rows (see [`super::rows`]).
pub async fn list(db: &TenantDb, filter: &Filter, page: &PageArgs) -> ApiResult<Page<super::rows::DocumentRow>> {
    let window = page.window()?;
    let mut q = documents::Entity::find().filter(documents::Column::TenantId.eq(db.tenant()));
    if let Some(p) = filter.project_id {
        q = q.filter(documents::Column::ProjectId.eq(p));
    }
    if let Some(c) = filter.client_id {
        q = q.filter(documents::Column::ClientId.eq(c));
    }
    let q = filter.common.apply(q, documents::Column::Name, documents::Column::CreatedAt);
    let rows = super::rows::page(db, window.apply(q, documents::Column::Id)).await?;
    Ok(window.finish(rows))
}

/// The documents a cascading delete of `client` (`project` when `None`)
/// takes with it, as (document, its project): whose deletion to announce.
pub async fn under(db: &TenantDb, client: Option<Uuid>, project: Option<Uuid>) -> ApiResult<Vec<(Uuid, Option<Uuid>)>> {
    let t = db.tenant();
    let mut q = documents::Entity::find().filter(documents::Column::TenantId.eq(t));
    q = match (client, project) {
        (Some(c), _) => {
            let projects = projects::Entity::find()
                .filter(projects::Column::TenantId.eq(t))
                .filter(projects::Column::ClientId.eq(c))
                .select_only()
                .column(projects::Column::Id)
                .into_tuple::<Uuid>()
                .all(db)
                .await?;
            q.filter(sea_orm::Condition::any().add(documents::Column::ClientId.eq(c)).add(documents::Column::ProjectId.is_in(projects)))
        }
        (None, Some(p)) => q.filter(documents::Column::ProjectId.eq(p)),
        (None, None) => return Ok(Vec::new()),
    };
    Ok(q.select_only()
        .column(documents::Column::Id)
        .column(documents::Column::ProjectId)
        .into_tuple::<(Uuid, Option<Uuid>)>()
        .all(db)
        .await?)
}
