//! Host (and `X-Tenant`) -> tenant, with a short-lived cache in front of the
//! database. Misses are cached too, so random hosts cannot hammer PostgreSQL.
//! A cache that is down is skipped: resolution then reads the database.

use std::{sync::Arc, time::Duration};

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
}

enum Lookup<'a> {
    Subdomain(&'a str),
    CustomDomain(&'a str),
}

impl TenantResolver {
    pub fn new(db: Database, cache: Arc<dyn Cache>, base_domain: String, ttl: Duration) -> Self {
        Self { db, cache, base_domain, ttl }
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
        match self.cache.get(&key).await {
            Ok(Some(bytes)) => {
                if let Ok(cached) = serde_json::from_slice::<Option<Tenant>>(&bytes) {
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
        found.ok_or(ApiError::TenantNotFound)
    }

    /// Drops cached look-ups of `tenant`, after it changed.
    pub async fn forget(&self, tenant: &Tenant) {
        let mut keys = vec![cache::platform_key("tenant-by-subdomain", &tenant.subdomain)];
        if let Some(d) = &tenant.custom_domain {
            keys.push(cache::platform_key("tenant-by-domain", d));
        }
        for key in keys {
            if let Err(e) = self.cache.delete(&key).await {
                tracing::warn!(error = %e, "could not invalidate a cached tenant");
            }
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
