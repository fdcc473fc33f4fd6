//! Documents registered through Apollo's automatic persisted queries: the
//! text of a query by the SHA-256 of that text, shared by every replica
//! through Redis (`t:{tenant}:apq:{hash}`, or `p:apq:{hash}` on the API host
//! without a tenant, with a TTL), and kept in process too, bounded in bytes,
//! least recently used first out: the store itself on the embedded default,
//! a copy in front of Redis otherwise (an entry never changes: its key is
//! the hash of its value, so a copy can never be stale).
//!
//! Registrations are per agency: a miss or a hit must not tell one agency
//! which documents another's apps send. Redis being unreachable makes a
//! lookup a miss (the client then sends the text) and a registration local.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use lru::LruCache;
use uuid::Uuid;

use crate::{cache::{self, Cache}, config::PersistedQuerySettings};

/// A SHA-256.
pub type Hash = [u8; 32];

/// The agency a registration belongs to; `None` on the bare API host.
pub type Scope = Option<Uuid>;

struct Local {
    lru: LruCache<(Scope, Hash), (Arc<str>, Instant)>,
    bytes: usize,
}

#[derive(Clone)]
pub struct Registered {
    shared: Option<Arc<dyn Cache>>,
    local: Arc<Mutex<Local>>,
    ttl: Duration,
    max_local_bytes: usize,
    max_document_bytes: usize,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered").field("shared", &self.shared).finish_non_exhaustive()
    }
}

fn shared_key(scope: Scope, hash: &Hash) -> String {
    let hash = hex::encode(hash);
    match scope {
        Some(tenant) => cache::tenant_key(tenant, "apq", &hash),
        None => cache::platform_key("apq", &hash),
    }
}

impl Registered {
    /// `shared`: Redis, or none on the embedded default.
    pub fn new(shared: Option<Arc<dyn Cache>>, settings: &PersistedQuerySettings) -> Self {
        Self {
            shared,
            local: Arc::new(Mutex::new(Local { lru: LruCache::unbounded(), bytes: 0 })),
            ttl: Duration::from_secs(settings.ttl_secs),
            max_local_bytes: settings.local_max_bytes,
            max_document_bytes: settings.max_document_bytes,
        }
    }

    fn local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The text registered under `hash` for `scope`, if any.
    pub async fn get(&self, scope: Scope, hash: &Hash) -> Option<Arc<str>> {
        {
            let mut local = self.local();
            match local.lru.get(&(scope, *hash)) {
                Some((text, at)) if at.elapsed() < self.ttl => return Some(text.clone()),
                Some(_) => {
                    if let Some((_, (text, _))) = local.lru.pop_entry(&(scope, *hash)) {
                        local.bytes -= text.len();
                    }
                }
                None => {}
            }
        }
        let shared = self.shared.as_ref()?;
        let bytes = match shared.get(&shared_key(scope, hash)).await {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!(error = %e, "persisted queries: Redis unavailable; answering a miss");
                return None;
            }
        };
        let text: Arc<str> = String::from_utf8(bytes).ok()?.into();
        self.keep(scope, *hash, text.clone());
        Some(text)
    }

    /// Registers `text` under its `hash` (the caller checked that it is its
    /// SHA-256). A text over `max_document_bytes` is not kept: it ran, and
    /// its client will send it whole again.
    pub async fn register(&self, scope: Scope, hash: &Hash, text: &str) {
        if text.len() > self.max_document_bytes {
            tracing::debug!(bytes = text.len(), "persisted queries: a registration over max_document_bytes is not kept");
            return;
        }
        self.keep(scope, *hash, text.into());
        if let Some(shared) = &self.shared
            && let Err(e) = shared.set(&shared_key(scope, hash), text.as_bytes(), self.ttl).await
        {
            tracing::warn!(error = %e, "persisted queries: could not share a registration; it stays on this replica");
        }
    }

    fn keep(&self, scope: Scope, hash: Hash, text: Arc<str>) {
        let mut local = self.local();
        local.bytes += text.len();
        if let Some((old, _)) = local.lru.put((scope, hash), (text, Instant::now())) {
            local.bytes -= old.len();
        }
        while local.bytes > self.max_local_bytes {
            let Some((_, (gone, _))) = local.lru.pop_lru() else { break };
            local.bytes -= gone.len();
        }
    }
}
