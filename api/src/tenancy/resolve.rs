//! Host (and `X-Tenant`) -> tenant, with a short-lived cache in front of the
//! database. Misses are cached too, so random hosts cannot hammer PostgreSQL.
//! A cache that is down is skipped: resolution then reads the database.
//!
//! In front of the shared cache, each replica keeps the look-ups it made in
//! process, for as long as its invalidation bus is live: a change anywhere
//! (`forget`) is published and drops the entry on every replica, and when
//! the subscription drops, so does the whole local copy. A request then
//! costs no round trip to resolve its tenant.

use std::{
    collections::HashMap,
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{
    cache::{self, Cache},
    error::{ApiError, ApiResult},
    store::{self, Database},
};

use super::{HostKind, Tenant, classify_host};

/// The outcome for one request.
#[derive(Debug, Clone)]
pub struct ResolvedTenant {
    pub host: HostKind,
    /// `None` on the API host without `X-Tenant`.
    pub tenant: Option<Tenant>,
}

#[derive(Debug, Clone)]
pub struct TenantResolver {
    db: Database,
    cache: Arc<dyn Cache>,
    base_domain: String,
    ttl: Duration,
    local: Arc<Local>,
}

/// The in-process copy: cache key -> (tenant or "none", when fetched).
#[derive(Debug, Default)]
struct Local {
    entries: RwLock<HashMap<String, (Option<Tenant>, Instant)>>,
    /// Bumped by every invalidation: a look-up that began before one does
    /// not store what it read.
    generation: AtomicU64,
}

/// Random hosts are cached as misses; past this many entries the copy
/// starts again rather than grow.
const MAX_LOCAL: usize = 10_000;
const INVALIDATION: &str = "tenant ";

impl Local {
    fn drop_key(&self, key: &str) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(key);
    }

    fn drop_all(&self) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }
}

enum Lookup<'a> {
    Subdomain(&'a str),
    CustomDomain(&'a str),
}

impl TenantResolver {
    pub fn new(db: Database, cache: Arc<dyn Cache>, base_domain: String, ttl: Duration) -> Self {
        let local = Arc::new(Local::default());
        let heard = Arc::downgrade(&local);
        cache.bus().listen(move |h| {
            let Some(local) = heard.upgrade() else { return };
            match h {
                cache::bus::Heard::Message(m) => {
                    if let Some(key) = std::str::from_utf8(m).ok().and_then(|t| t.strip_prefix(INVALIDATION)) {
                        local.drop_key(key);
                    }
                }
                cache::bus::Heard::Lost => local.drop_all(),
            }
        });
        Self { db, cache, base_domain, ttl, local }
    }

    /// A fresh local entry, while the bus is live.
    fn local_hit(&self, key: &str) -> Option<Option<Tenant>> {
        let live_since = self.cache.bus().live_since()?;
        let entries = self.local.entries.read().unwrap_or_else(PoisonError::into_inner);
        let (tenant, at) = entries.get(key)?;
        (*at >= live_since && at.elapsed() < self.ttl).then(|| tenant.clone())
    }

    /// Keeps what a look-up read, unless an invalidation came meanwhile.
    fn keep_local(&self, key: &str, tenant: &Option<Tenant>, generation: u64, began: Instant) {
        if self.cache.bus().live_since().is_none_or(|live| live > began) {
            return;
        }
        let mut entries = self.local.entries.write().unwrap_or_else(PoisonError::into_inner);
        if self.local.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_LOCAL {
            entries.clear();
        }
        entries.insert(key.to_owned(), (tenant.clone(), began));
    }

    pub async fn resolve(&self, host: &str, x_tenant: Option<&str>) -> ApiResult<ResolvedTenant> {
        let kind = classify_host(host, &self.base_domain);
        let tenant = match (&kind, x_tenant) {
            (HostKind::Invalid, _) => return Err(ApiError::TenantNotFound),
            (HostKind::Api, None) => None,
            (HostKind::Api, Some(sub)) => Some(self.lookup(Lookup::Subdomain(&sub.trim().to_ascii_lowercase())).await?),
            // On a tenant's own host the host decides; a disagreeing
            // `X-Tenant` is refused rather than ignored.
            (HostKind::Subdomain(sub), header) => {
                let t = self.lookup(Lookup::Subdomain(sub)).await?;
                check_header(&t, header)?;
                Some(t)
            }
            (HostKind::CustomDomain(domain), header) => {
                let t = self.lookup(Lookup::CustomDomain(domain)).await?;
                check_header(&t, header)?;
                Some(t)
            }
        };
        if let Some(t) = &tenant
            && !t.is_active
        {
            return Err(ApiError::TenantInactive);
        }
        Ok(ResolvedTenant { host: kind, tenant })
    }

    async fn lookup(&self, by: Lookup<'_>) -> ApiResult<Tenant> {
        let key = match by {
            Lookup::Subdomain(s) => cache::platform_key("tenant-by-subdomain", s),
            Lookup::CustomDomain(d) => cache::platform_key("tenant-by-domain", d),
        };
        if let Some(found) = self.local_hit(&key) {
            return found.ok_or(ApiError::TenantNotFound);
        }
        let generation = self.local.generation.load(Ordering::Acquire);
        let began = Instant::now();
        match self.cache.get(&key).await {
            Ok(Some(bytes)) => {
                if let Ok(cached) = serde_json::from_slice::<Option<Tenant>>(&bytes) {
                    self.keep_local(&key, &cached, generation, began);
                    return cached.ok_or(ApiError::TenantNotFound);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "tenant cache unavailable; reading the database"),
        }
        let found = match by {
            Lookup::Subdomain(s) => store::tenants::by_subdomain(self.db.platform(), s).await?,
            Lookup::CustomDomain(d) => store::tenants::by_custom_domain(self.db.platform(), d).await?,
        }
        .map(Tenant::from);
        if let Ok(bytes) = serde_json::to_vec(&found)
            && let Err(e) = self.cache.set(&key, &bytes, self.ttl).await
        {
            tracing::warn!(error = %e, "could not cache a tenant look-up");
        }
        self.keep_local(&key, &found, generation, began);
        found.ok_or(ApiError::TenantNotFound)
    }

    /// Drops cached look-ups of `tenant`, after it changed.
    pub async fn forget(&self, tenant: &Tenant) {
        let mut keys = vec![cache::platform_key("tenant-by-subdomain", &tenant.subdomain)];
        if let Some(d) = &tenant.custom_domain {
            keys.push(cache::platform_key("tenant-by-domain", d));
        }
        for key in keys {
            self.local.drop_key(&key);
            if let Err(e) = self.cache.delete(&key).await {
                tracing::warn!(error = %e, "could not invalidate a cached tenant");
            }
            self.cache.publish(format!("{INVALIDATION}{key}").as_bytes()).await;
        }
    }
}

fn check_header(tenant: &Tenant, header: Option<&str>) -> ApiResult<()> {
    match header {
        Some(h) if !h.trim().eq_ignore_ascii_case(&tenant.subdomain) => Err(ApiError::Forbidden(
            "the X-Tenant header names another tenant than this host; drop the header or use the API host",
        )),
        _ => Ok(()),
    }
}
