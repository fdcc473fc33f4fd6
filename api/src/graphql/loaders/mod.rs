//! Request-scoped, tenant-scoped dataloaders. A `Loaders` is built for one
//! request from that request's `TenantDb`, so its caches die with the request
//! and every batch it issues is scoped to that request's tenant.

use std::{collections::HashMap, marker::PhantomData, sync::Arc};

use async_graphql::dataloader::{DataLoader, Loader};
use uuid::Uuid;

use crate::store::{
    TenantDb,
    rows::{self, Child, ClientRow, DocumentRow, ProjectRow, Row, UserRow},
};

/// A loader of rows by id: one statement per batch, shared rows.
pub struct ById<R>(Arc<TenantDb>, PhantomData<fn() -> R>);

impl<R: Row + Send + Sync + 'static> Loader<Uuid> for ById<R> {
    type Value = Arc<R>;
    type Error = Arc<sea_orm::DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = rows::by_ids::<R>(self.0.as_ref(), keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|r| (r.id(), Arc::new(r))).collect())
    }
}

/// A loader of the first `n` children of parents: key `(parent, n)`, one
/// statement per batch (with the largest `n` asked).
pub struct FirstOf<R>(Arc<TenantDb>, PhantomData<fn() -> R>);

impl<R: Child + Clone + Send + Sync + 'static> Loader<(Uuid, u64)> for FirstOf<R> {
    type Value = Arc<[R]>;
    type Error = Arc<sea_orm::DbErr>;

    async fn load(&self, keys: &[(Uuid, u64)]) -> Result<HashMap<(Uuid, u64), Self::Value>, Self::Error> {
        let mut parents: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        parents.sort_unstable();
        parents.dedup();
        let n = keys.iter().map(|k| k.1).max().unwrap_or(0);
        let rows = rows::first_of::<R>(self.0.as_ref(), &parents, n).await.map_err(Arc::new)?;
        let mut by_parent: HashMap<Uuid, Vec<R>> = HashMap::new();
        for row in rows {
            if let Some(p) = row.parent() {
                by_parent.entry(p).or_default().push(row);
            }
        }
        Ok(keys
            .iter()
            .map(|&(p, n)| {
                let take = usize::try_from(n).unwrap_or(usize::MAX);
                let rows: Arc<[R]> = by_parent.get(&p).map(|v| v.iter().take(take).cloned().collect()).unwrap_or_default();
                ((p, n), rows)
            })
            .collect())
    }
}

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
    pub users: DataLoader<ById<UserRow>>,
    pub clients: DataLoader<ById<ClientRow>>,
    pub projects: DataLoader<ById<ProjectRow>>,
    pub projects_of_client: DataLoader<FirstOf<ProjectRow>>,
    pub documents_of_project: DataLoader<FirstOf<DocumentRow>>,
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
        // In the request's span: its statements and log lines are the request's.
        let handle = tokio::spawn(tracing::Instrument::in_current_span(load)).abort_handle();
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
            users: DataLoader::new(ById(db.clone(), PhantomData), spawn()),
            clients: DataLoader::new(ById(db.clone(), PhantomData), spawn()),
            projects: DataLoader::new(ById(db.clone(), PhantomData), spawn()),
            projects_of_client: DataLoader::new(FirstOf(db.clone(), PhantomData), spawn()),
            documents_of_project: DataLoader::new(FirstOf(db.clone(), PhantomData), spawn()),
            versions_of_document: DataLoader::new(VersionsOfDocument(db), spawn()),
            _loads: loads,
        }
    }
}
