//! Request-scoped, tenant-scoped dataloaders. A `Loaders` is built for one
//! request from that request's `TenantDb`, so its caches die with the request
//! and every batch it issues is scoped to that request's tenant.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::{DataLoader, Loader};
use entity::{clients, documents, projects, users};
use uuid::Uuid;

use crate::store::{self, TenantDb};

/// A loader of rows by id: one `IN` query per batch.
macro_rules! by_id {
    ($name:ident, $model:ty, $fetch:path) => {
        pub struct $name(Arc<TenantDb>);

        impl Loader<Uuid> for $name {
            type Value = $model;
            type Error = Arc<sea_orm::DbErr>;

            async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
                let rows = $fetch(self.0.as_ref(), keys).await.map_err(Arc::new)?;
                Ok(rows.into_iter().map(|r| (r.id, r)).collect())
            }
        }
    };
}

/// A loader of the first `n` children of parents: key `(parent, n)`, one
/// window-function query per batch (with the largest `n` asked).
macro_rules! first_children {
    ($name:ident, $model:ty, $fetch:path, $parent:expr) => {
        pub struct $name(Arc<TenantDb>);

        impl Loader<(Uuid, u64)> for $name {
            type Value = Vec<$model>;
            type Error = Arc<sea_orm::DbErr>;

            async fn load(&self, keys: &[(Uuid, u64)]) -> Result<HashMap<(Uuid, u64), Self::Value>, Self::Error> {
                let parents: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
                let n = keys.iter().map(|k| k.1).max().unwrap_or(0);
                let rows = $fetch(self.0.as_ref(), &parents, n).await.map_err(Arc::new)?;
                let parent_of: fn(&$model) -> Option<Uuid> = $parent;
                let mut by_parent: HashMap<Uuid, Vec<$model>> = HashMap::new();
                for row in rows {
                    if let Some(p) = parent_of(&row) {
                        by_parent.entry(p).or_default().push(row);
                    }
                }
                Ok(keys
                    .iter()
                    .map(|&(p, n)| {
                        let take = usize::try_from(n).unwrap_or(usize::MAX);
                        let rows = by_parent.get(&p).map(|v| v.iter().take(take).cloned().collect()).unwrap_or_default();
                        ((p, n), rows)
                    })
                    .collect())
            }
        }
    };
}

by_id!(UserLoader, users::Model, store::users::by_ids);
by_id!(ClientLoader, clients::Model, store::clients::by_ids);
by_id!(ProjectLoader, projects::Model, store::projects::by_ids);
first_children!(ProjectsOfClient, projects::Model, store::projects::first_of_clients, |r| Some(r.client_id));
first_children!(DocumentsOfProject, documents::Model, store::documents::first_of_projects, |r| r.project_id);

/// All versions of documents, oldest first: one `IN` query per batch.
pub struct VersionsOfDocument(Arc<TenantDb>);

impl Loader<Uuid> for VersionsOfDocument {
    type Value = Vec<entity::document_versions::Model>;
    type Error = Arc<sea_orm::DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = crate::files::versions_of_documents(self.0.as_ref(), keys).await.map_err(Arc::new)?;
        let mut by_doc: HashMap<Uuid, Self::Value> = HashMap::new();
        for row in rows {
            by_doc.entry(row.document_id).or_default().push(row);
        }
        Ok(by_doc)
    }
}

pub struct Loaders {
    pub users: DataLoader<UserLoader>,
    pub clients: DataLoader<ClientLoader>,
    pub projects: DataLoader<ProjectLoader>,
    pub projects_of_client: DataLoader<ProjectsOfClient>,
    pub documents_of_project: DataLoader<DocumentsOfProject>,
    pub versions_of_document: DataLoader<VersionsOfDocument>,
    _loads: Arc<Loads>,
}

/// The loads the dataloaders spawned, aborted when the request's loaders
/// are dropped: an execution dropped mid-way (its timeout) leaves no load
/// running on its transaction, nor beginning a new one after it ended.
/// Once an execution has finished, its loads have too.
#[derive(Default)]
struct Loads(std::sync::Mutex<Vec<tokio::task::AbortHandle>>);

impl Loads {
    fn spawn(&self, load: futures::future::BoxFuture<'static, ()>) {
        let handle = tokio::spawn(load).abort_handle();
        let mut running = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        running.retain(|h| !h.is_finished());
        running.push(handle);
    }
}

impl Drop for Loads {
    fn drop(&mut self) {
        let running = self.0.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        for load in running.drain(..) {
            load.abort();
        }
    }
}

impl std::fmt::Debug for Loaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Loaders")
    }
}

impl Loaders {
    pub fn new(db: Arc<TenantDb>) -> Self {
        let loads = Arc::new(Loads::default());
        let spawn = || {
            let loads = loads.clone();
            move |load| loads.spawn(load)
        };
        Self {
            users: DataLoader::new(UserLoader(db.clone()), spawn()),
            clients: DataLoader::new(ClientLoader(db.clone()), spawn()),
            projects: DataLoader::new(ProjectLoader(db.clone()), spawn()),
            projects_of_client: DataLoader::new(ProjectsOfClient(db.clone()), spawn()),
            documents_of_project: DataLoader::new(DocumentsOfProject(db.clone()), spawn()),
            versions_of_document: DataLoader::new(VersionsOfDocument(db), spawn()),
            _loads: loads,
        }
    }
}
