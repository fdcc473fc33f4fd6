//! The files of one multipart request, from the moment their bytes are
//! stored until the request ends: which `Upload` index names which file,
//! which field recorded which, and what becomes of the rest.
//!
//! Bytes stream to storage before any resolver runs, so a request can carry
//! files its operation never uses. Only a file a resolver takes can end up
//! under a row; once the request's transaction has ended, every other file is
//! removed, and so is every file when the transaction rolled back. Nothing
//! unused is kept, so nothing unused is counted.

use std::sync::{Mutex, PoisonError};

use entity::document_versions;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QuerySelect as _};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult},
    objects::{self, Objects},
    store::Database,
};

/// A file of a multipart request, already streamed to storage at `key` by
/// the HTTP layer; its rows are still to be written.
#[derive(Debug, Clone)]
pub struct Staged {
    pub key: String,
    pub version_id: Uuid,
    pub filename: String,
    pub declared_type: Option<String>,
    pub stored: objects::Stored,
}

#[derive(Debug)]
pub struct StagedUploads {
    objects: Objects,
    state: Mutex<Files>,
}

#[derive(Debug, Default)]
struct Files {
    /// Every file stored, and whether a field took it.
    stored: Vec<(Staged, bool)>,
    /// `Upload` index -> index into `stored`.
    uploads: Vec<usize>,
    /// Set once the files' fate is decided; until then, dropping the
    /// request (a client gone mid-upload) queues the untaken ones for
    /// removal.
    settled: bool,
}

impl StagedUploads {
    pub fn new(objects: Objects) -> Self {
        Self { objects, state: Mutex::default() }
    }

    fn files(&self) -> std::sync::MutexGuard<'_, Files> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a file whose bytes are stored; returns its index.
    pub fn stored(&self, file: Staged) -> usize {
        let mut files = self.files();
        files.stored.push((file, false));
        files.stored.len() - 1
    }

    /// The request's next `Upload` index names stored file `file`.
    pub fn named(&self, file: usize) {
        self.files().uploads.push(file);
    }

    /// The file of `Upload` index `upload`, for the field that records it.
    /// A file is recorded once: one version's bytes are never another's.
    pub fn take(&self, upload: usize) -> ApiResult<Staged> {
        let mut files = self.files();
        let index = files.uploads.get(upload).copied();
        let Some((file, taken)) = index.and_then(|i| files.stored.get_mut(i)) else {
            return Err(ApiError::BadUserInput { field: "file", message: "no file was sent for this field (multipart request spec)".into() });
        };
        if *taken {
            return Err(ApiError::BadUserInput { field: "file", message: "this file is already used by another field; send it once for each".into() });
        }
        *taken = true;
        Ok(file.clone())
    }

    /// The request failed before it ran: every file goes.
    pub async fn discard_all(&self) {
        let keys = self.settle_keys(|_| true);
        for key in keys {
            self.objects.discard(&key).await;
        }
    }

    /// After the request's transaction: keeps the files fields recorded in
    /// a transaction that committed, removes the rest. When the commit did
    /// not happen (or its outcome is unknown), a taken file is removed only
    /// once the database confirms no row points at it.
    pub async fn settle(&self, db: &Database, tenant: Uuid, committed: bool) {
        let untaken = self.settle_keys(|taken| !taken);
        let taken = if committed { Vec::new() } else { self.taken_keys() };
        for key in untaken {
            self.objects.discard(&key).await;
        }
        if taken.is_empty() {
            return;
        }
        match unreferenced(db, tenant, taken).await {
            Ok(keys) => {
                for key in keys {
                    self.objects.discard(&key).await;
                }
            }
            Err(e) => tracing::warn!(error = ?e, "checking the rows of a failed upload; the sweeper will remove its bytes"),
        }
    }

    /// Marks the files settled and returns the keys of those `pick` selects
    /// by whether they were taken.
    fn settle_keys(&self, pick: impl Fn(bool) -> bool) -> Vec<String> {
        let mut files = self.files();
        files.settled = true;
        files.stored.iter().filter(|(_, taken)| pick(*taken)).map(|(f, _)| f.key.clone()).collect()
    }

    fn taken_keys(&self) -> Vec<String> {
        self.files().stored.iter().filter(|(_, taken)| *taken).map(|(f, _)| f.key.clone()).collect()
    }
}

/// Of `keys`, those no committed version row points at.
async fn unreferenced(db: &Database, tenant: Uuid, keys: Vec<String>) -> anyhow::Result<Vec<String>> {
    let db = db.scoped(tenant);
    let found: Result<Vec<String>, _> = document_versions::Entity::find()
        .select_only()
        .column(document_versions::Column::StorageKey)
        .filter(document_versions::Column::TenantId.eq(tenant))
        .filter(document_versions::Column::StorageKey.is_in(keys.iter().map(String::as_str)))
        .into_tuple()
        .all(&db)
        .await;
    db.finish(true).await?;
    let found = found?;
    Ok(keys.into_iter().filter(|k| !found.contains(k)).collect())
}

impl Drop for StagedUploads {
    /// A request dropped before its files were settled (the client went
    /// away mid-request): the files no field took are queued for removal.
    /// Taken ones may be under a committing row; the sweeper decides those.
    fn drop(&mut self) {
        let files = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if !files.settled {
            let untaken = files.stored.iter().filter(|(_, taken)| !taken).map(|(f, _)| f.key.clone());
            self.objects.discard_later(untaken.collect::<Vec<_>>());
        }
    }
}
