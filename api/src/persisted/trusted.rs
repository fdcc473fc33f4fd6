//! Trusted documents: each agency's persisted query list, uploaded as
//! manifests (every upload a new version, the latest active), and its mode
//! for API keys (`OFF`, `LOG_UNKNOWN`, `REQUIRE`).
//!
//! Each replica keeps every agency's mode and active manifest for
//! `persisted_queries.trusted_refresh_secs`, and a manifest's operations
//! once loaded (a manifest never changes; a new upload is a new manifest),
//! so the check a request pays is two map look-ups. A change is seen at once
//! by the replica that committed it (`forget`), by the others within the
//! refresh.

use std::{
    collections::{HashMap, HashSet},
    num::NonZeroUsize,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use entity::{trusted_document_manifests, trusted_document_settings};
use lru::LruCache;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::{manifest, registered::Hash};
use crate::{
    config::PersistedQuerySettings,
    error::ApiResult,
    store::{
        Database, TenantDb,
        trusted_documents::{self as store, Uploader},
    },
};

/// Agencies whose mode a replica keeps, and manifests whose operations.
const POLICIES_KEPT: usize = 10_000;
const LISTS_KEPT: usize = 64;

/// What an agency asks of its API keys' operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, async_graphql::Enum)]
#[graphql(name = "TrustedDocumentsMode")]
pub enum Mode {
    /// API keys may run any operation.
    #[default]
    Off,
    /// API keys may run any operation; those not in the active manifest are
    /// logged, to find them before requiring.
    LogUnknown,
    /// API keys may run only the active manifest's operations, by id.
    Require,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "OFF",
            Self::LogUnknown => "LOG_UNKNOWN",
            Self::Require => "REQUIRE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "OFF" => Some(Self::Off),
            "LOG_UNKNOWN" => Some(Self::LogUnknown),
            "REQUIRE" => Some(Self::Require),
            _ => None,
        }
    }
}

/// An agency's mode and its active manifest (id, version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    pub mode: Mode,
    pub manifest: Option<(Uuid, i32)>,
}

/// The operations of one manifest.
#[derive(Debug)]
pub struct TrustedList {
    pub version: i32,
    by_id: HashMap<String, Arc<str>>,
    bodies: HashSet<Hash>,
}

impl TrustedList {
    fn new(version: i32, rows: Vec<(String, String)>) -> Self {
        let bodies = rows.iter().map(|(_, body)| Sha256::digest(body.as_bytes()).into()).collect();
        let by_id = rows.into_iter().map(|(id, body)| (id, Arc::from(body))).collect();
        Self { version, by_id, bodies }
    }

    /// The text of the operation `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<str>> {
        self.by_id.get(id)
    }

    /// Whether `text` is, byte for byte, one of the operations.
    pub fn contains_text(&self, text: &str) -> bool {
        self.bodies.contains(&<Hash>::from(Sha256::digest(text.as_bytes())))
    }
}

#[derive(Clone)]
pub struct TrustedDocuments {
    db: Database,
    refresh: Duration,
    max_document_bytes: usize,
    policies: Arc<Mutex<LruCache<Uuid, (Instant, Policy)>>>,
    lists: Arc<Mutex<LruCache<Uuid, Arc<TrustedList>>>>,
}

impl std::fmt::Debug for TrustedDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedDocuments").field("refresh", &self.refresh).finish_non_exhaustive()
    }
}

fn lru<V>(n: usize) -> Arc<Mutex<LruCache<Uuid, V>>> {
    Arc::new(Mutex::new(LruCache::new(NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN))))
}

impl TrustedDocuments {
    pub fn new(db: Database, settings: &PersistedQuerySettings) -> Self {
        Self {
            db,
            refresh: Duration::from_secs(settings.trusted_refresh_secs),
            max_document_bytes: settings.max_document_bytes,
            policies: lru(POLICIES_KEPT),
            lists: lru(LISTS_KEPT),
        }
    }

    /// The agency's mode and active manifest. Should re-reading them fail,
    /// what this replica last read still holds.
    pub async fn policy(&self, tenant: Uuid) -> ApiResult<Policy> {
        let kept = self.policies.lock().unwrap_or_else(PoisonError::into_inner).get(&tenant).copied();
        if let Some((at, policy)) = kept
            && at.elapsed() < self.refresh
        {
            return Ok(policy);
        }
        let db = self.db.scoped_reader(tenant);
        let read = async {
            let mode = store::mode(&db).await?.and_then(|s| Mode::parse(&s.mode)).unwrap_or_default();
            let manifest = store::latest(&db).await?.map(|m| (m.id, m.version));
            Ok(Policy { mode, manifest })
        }
        .await;
        finish(&db).await;
        match (read, kept) {
            (Ok(policy), _) => {
                self.policies.lock().unwrap_or_else(PoisonError::into_inner).put(tenant, (Instant::now(), policy));
                Ok(policy)
            }
            (Err(e), Some((_, stale))) => {
                tracing::warn!(error = ?e, %tenant, "could not re-read the trusted-documents mode; keeping the last one read");
                Ok(stale)
            }
            (Err(e), None) => Err(e),
        }
    }

    /// The operations of the agency's active manifest, if it has one.
    pub async fn list(&self, tenant: Uuid, policy: &Policy) -> ApiResult<Option<Arc<TrustedList>>> {
        let Some((id, version)) = policy.manifest else { return Ok(None) };
        if let Some(list) = self.lists.lock().unwrap_or_else(PoisonError::into_inner).get(&id) {
            return Ok(Some(list.clone()));
        }
        let db = self.db.scoped_reader(tenant);
        let rows = store::documents(&db, id).await;
        finish(&db).await;
        let list = Arc::new(TrustedList::new(version, rows?));
        self.lists.lock().unwrap_or_else(PoisonError::into_inner).put(id, list.clone());
        Ok(Some(list))
    }

    /// Drops what this replica keeps of the agency's mode and manifest,
    /// after a change to them committed.
    pub fn forget(&self, tenant: Uuid) {
        self.policies.lock().unwrap_or_else(PoisonError::into_inner).pop(&tenant);
    }

    /// Reads `manifest` (Apollo's or Relay's format) and stores it through
    /// `db` as the agency's next version, which becomes the active one.
    pub async fn upload(&self, db: &TenantDb, manifest: &serde_json::Value, uploader: Uploader) -> ApiResult<trusted_document_manifests::Model> {
        let parsed = manifest::parse(manifest, self.max_document_bytes)?;
        store::insert(db, parsed.format.as_str(), uploader, parsed.operations).await
    }

    pub async fn set_mode(&self, db: &TenantDb, mode: Mode, by: Option<Uuid>) -> ApiResult<trusted_document_settings::Model> {
        store::set_mode(db, mode.as_str(), by).await
    }
}

/// Ends a read-only handle; a failure to end it has nothing to undo.
async fn finish(db: &TenantDb) {
    if let Err(e) = db.finish(true).await {
        tracing::warn!(error = %e, "ending a trusted-documents read");
    }
}
