//! Recording when an API key was last used. Never inside the request that
//! used it: a query must stay read-only (on SQLite a reader never waits for
//! the writer), so the write runs in the background, in a short transaction
//! of its own, at most once a minute per key and never twice at once.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use uuid::Uuid;

use crate::{
    cache::{self, Cache},
    error::ApiError,
    store::{self, Database},
};

/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct KeyUses {
    db: Database,
    cache: Arc<dyn Cache>,
    /// Keys whose write is under way in this process.
    in_flight: Arc<Mutex<HashSet<Uuid>>>,
}

impl KeyUses {
    pub fn new(db: Database, cache: Arc<dyn Cache>) -> Self {
        Self { db, cache, in_flight: Arc::default() }
    }

    /// Notes that `key` of `tenant` was used now, and returns at once.
    pub fn record(&self, tenant: Uuid, key: Uuid) {
        if !self.in_flight().insert(key) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let _done = InFlight { uses: &this, key };
            this.touch(tenant, key).await;
        });
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        // The set stays consistent whatever panicked while holding it.
        self.in_flight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn touch(&self, tenant: Uuid, key: Uuid) {
        let marker = cache::tenant_key(tenant, "api-key-used", &key.to_string());
        if matches!(self.cache.get(&marker).await, Ok(Some(_))) {
            return;
        }
        let _ = self.cache.set(&marker, b"1", TOUCH_EVERY).await;
        let db = self.db.scoped(tenant);
        let touched = store::api_keys::touch(&db, key).await;
        let ended = db.finish(touched.is_ok()).await.map_err(ApiError::from);
        if let Err(e) = touched.and(ended) {
            tracing::warn!(error = ?e, %key, "could not record an API key's last use");
        }
    }
}

/// Takes the key out of the in-flight set however the write ended.
struct InFlight<'a> {
    uses: &'a KeyUses,
    key: Uuid,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.uses.in_flight().remove(&self.key);
    }
}
