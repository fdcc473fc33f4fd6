//! The sweeper: removes bytes no row points at (uploads whose transaction
//! never committed, versions of deleted documents), once they are older than
//! the grace period. Each tenant is swept under its own scope: its prefix,
//! and its own rows through the tenant-scoped handle.

use std::{collections::HashSet, time::Duration};

use chrono::Utc;
use entity::document_versions;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QuerySelect as _};

use crate::{objects, startup::AppState, store};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub tenants: usize,
    pub objects_seen: usize,
    pub removed: usize,
}

pub async fn sweep(state: &AppState, grace: Duration) -> anyhow::Result<Swept> {
    let cutoff = Utc::now() - chrono::Duration::from_std(grace)?;
    let mut report = Swept::default();
    for tenant in store::tenants::all_ids(state.db.platform()).await? {
        report.tenants += 1;
        let listed = state.objects.list(&objects::tenant_prefix(tenant)).await?;
        report.objects_seen += listed.len();
        let old: Vec<_> = listed.into_iter().filter(|o| o.last_modified < cutoff).collect();
        if old.is_empty() {
            continue;
        }
        let db = state.db.scoped_reader(tenant);
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
            state.objects.delete(&o.key).await?;
            report.removed += 1;
            tracing::info!(key = %o.key, "swept unreachable bytes");
        }
    }
    Ok(report)
}

/// Sweeps every `interval` until the process ends; failures are logged and
/// retried on the next round.
pub fn spawn_periodic(state: AppState) {
    let interval = state.settings.storage.sweep_interval_secs;
    if interval == 0 {
        return;
    }
    let grace = Duration::from_secs(state.settings.storage.sweep_grace_secs);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(interval));
        tick.tick().await;
        loop {
            tick.tick().await;
            match sweep(&state, grace).await {
                Ok(r) => tracing::info!(tenants = r.tenants, seen = r.objects_seen, removed = r.removed, "storage sweep done"),
                Err(e) => tracing::warn!(error = ?e, "storage sweep failed; retrying next round"),
            }
        }
    });
}
