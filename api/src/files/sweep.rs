//! The sweeper: removes bytes no row points at, and ends expired
//! direct-upload grants. Each tenant is swept under its own scope: its
//! prefix, and its own rows through the tenant-scoped handle.
//!
//! Two passes, because what they look for ages at very different speeds:
//!
//! - The uploads pass (`sweep_uploads`, every
//!   `storage.upload_sweep_interval_secs`, a minute by default) is cheap: it
//!   retries removals that failed or had to wait (files of a multipart
//!   request nobody used, whose removal failed or whose client went away),
//!   and for each grant expired for longer than `STAGING_MARGIN` it removes
//!   the staging object and the reservation, giving an unconfirmed
//!   reservation's bytes back to the quota. One indexed query per tenant,
//!   no listing.
//! - The full pass (`sweep`, every `storage.sweep_interval_secs`, and
//!   `aggios storage sweep`) lists every object: version keys no row points
//!   at once older than the grace period (uploads whose transaction never
//!   committed, versions of deleted documents), and staging objects older
//!   than the link lifetime plus `STAGING_MARGIN`, whatever left them.

use std::{collections::HashSet, time::Duration};

use chrono::{DateTime, Utc};
use entity::document_versions;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QuerySelect as _};
use uuid::Uuid;

use super::{Files, quota};
use crate::{error::ApiResult, objects, store};

/// How long past its grant's expiry a staging object is left alone: a PUT
/// that started just before the expiry, or a confirmation that checked its
/// token just before it, may still be finishing.
pub const STAGING_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub tenants: usize,
    pub objects_seen: usize,
    /// Objects removed.
    pub removed: usize,
    /// Direct-upload grants ended (their reservations removed).
    pub grants_expired: usize,
}

/// The full pass.
pub async fn sweep(files: &Files, grace: Duration) -> anyhow::Result<Swept> {
    let now = Utc::now();
    let cutoff = now - chrono::Duration::from_std(grace)?;
    let staging_cutoff = now - chrono::Duration::from_std(staging_age(files))?;
    let mut report = Swept::default();
    for tenant in store::tenants::all_ids(files.db.platform()).await? {
        report.tenants += 1;
        let (grants, removed) = expire_grants(files, tenant, now).await?;
        report.grants_expired += grants;
        report.removed += removed;
        let listed = files.objects.list(&objects::tenant_prefix(tenant)).await?;
        report.objects_seen += listed.len();
        let (staging, versions): (Vec<_>, Vec<_>) = listed.into_iter().partition(|o| objects::is_staging_key(&o.key));
        // No row ever points at a staging key: once no grant can use it, it
        // is abandoned.
        for o in staging.iter().filter(|o| o.last_modified < staging_cutoff) {
            files.objects.delete(&o.key).await?;
            report.removed += 1;
            tracing::info!(key = %o.key, "swept an abandoned direct upload");
        }
        let old: Vec<_> = versions.into_iter().filter(|o| o.last_modified < cutoff).collect();
        if old.is_empty() {
            continue;
        }
        let db = files.db.scoped_reader(tenant);
        let mut known = HashSet::new();
        for chunk in old.chunks(500) {
            let keys: Vec<&str> = chunk.iter().map(|o| o.key.as_str()).collect();
            let rows: Vec<String> = document_versions::Entity::find()
                .select_only()
                .column(document_versions::Column::StorageKey)
                .filter(document_versions::Column::TenantId.eq(tenant))
                .filter(document_versions::Column::StorageKey.is_in(keys))
                .into_tuple()
                .all(&db)
                .await?;
            known.extend(rows);
        }
        db.finish(true).await?;
        for o in old.iter().filter(|o| !known.contains(&o.key)) {
            files.objects.delete(&o.key).await?;
            report.removed += 1;
            tracing::info!(key = %o.key, "swept unreachable bytes");
        }
    }
    Ok(report)
}

/// A staging object older than this has no grant left that could confirm it.
fn staging_age(files: &Files) -> Duration {
    Duration::from_secs(files.storage.url_ttl_secs) + STAGING_MARGIN
}

/// The uploads pass, as of `now`.
pub async fn sweep_uploads(files: &Files, now: DateTime<Utc>) -> anyhow::Result<Swept> {
    let mut report = Swept { removed: files.objects.retry_discards().await, ..Swept::default() };
    for tenant in store::tenants::all_ids(files.db.platform()).await? {
        report.tenants += 1;
        let (grants, removed) = expire_grants(files, tenant, now).await?;
        report.grants_expired += grants;
        report.removed += removed;
    }
    Ok(report)
}

/// Ends the tenant's grants that expired more than `STAGING_MARGIN` before
/// `now`: removes each one's staging object, then its reservation, and gives
/// an unconfirmed one's bytes back. A staging object storage will not remove
/// keeps its reservation until a later pass. Returns (grants ended, objects
/// removed).
pub async fn expire_grants(files: &Files, tenant: Uuid, now: DateTime<Utc>) -> anyhow::Result<(usize, usize)> {
    let before = now - chrono::Duration::from_std(STAGING_MARGIN)?;
    let db = files.db.scoped(tenant);
    let ended: ApiResult<(usize, usize)> = async {
        let mut ended = (0, 0);
        for grant in store::upload_reservations::expired(&db, before).await? {
            let key = objects::staging_key(tenant, grant.id);
            if let Err(e) = files.objects.delete(&key).await {
                tracing::warn!(error = ?anyhow::Error::from(e), key, "removing an expired upload; retrying next pass");
                continue;
            }
            ended.1 += 1;
            // Removed by this pass and no other: only then is it refunded.
            if store::upload_reservations::remove(&db, grant.id).await? {
                ended.0 += 1;
                if grant.confirmed_at.is_none() {
                    quota::refund(&db, grant.size_bytes).await?;
                }
            }
        }
        Ok(ended)
    }
    .await;
    db.finish(ended.is_ok()).await?;
    ended.map_err(|e| anyhow::anyhow!("ending expired upload grants: {e:?}"))
}

/// Runs both passes on their intervals until the process ends; failures are
/// logged and retried on the next round.
pub fn spawn_periodic(files: Files) {
    let storage = &files.storage;
    let grace = Duration::from_secs(storage.sweep_grace_secs);
    every(storage.sweep_interval_secs, files.clone(), move |files| async move {
        match sweep(&files, grace).await {
            Ok(r) => tracing::info!(tenants = r.tenants, seen = r.objects_seen, removed = r.removed, grants = r.grants_expired, "storage sweep done"),
            Err(e) => tracing::warn!(error = ?e, "storage sweep failed; retrying next round"),
        }
    });
    every(storage.upload_sweep_interval_secs, files.clone(), |files| async move {
        match sweep_uploads(&files, Utc::now()).await {
            Ok(r) if r.removed > 0 || r.grants_expired > 0 => {
                tracing::info!(removed = r.removed, grants = r.grants_expired, "uploads sweep done");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = ?e, "uploads sweep failed; retrying next round"),
        }
    });
}

/// Calls `run` every `secs` seconds (never when 0), the first time one
/// interval after start.
fn every<F: Future<Output = ()> + Send + 'static>(secs: u64, files: Files, run: impl Fn(Files) -> F + Send + 'static) {
    if secs == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(secs));
        tick.tick().await;
        loop {
            tick.tick().await;
            run(files.clone()).await;
        }
    });
}
