//! Whether the database is reachable, as this process last saw it. A probe
//! on its own one-connection pool runs every second; a statement that fails
//! for want of a connection marks the database down at once. While it is
//! down, requests answer `SERVICE_UNAVAILABLE` without waiting on it, and
//! the first successful probe brings it back.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use super::Database;
use crate::error::{ApiError, ApiResult};

/// The longest a probe waits; also the probe pool's acquire timeout.
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const PROBE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(super) struct DbHealth {
    down: AtomicBool,
    /// Wakes requests waiting for a connection when the database is found
    /// down, so that they answer now rather than at the acquire timeout.
    pub(super) went_down: tokio::sync::Notify,
}

impl DbHealth {
    pub(super) fn ensure_up(&self) -> ApiResult<()> {
        if self.down.load(Ordering::Acquire) { Err(ApiError::Unavailable("the database")) } else { Ok(()) }
    }

    pub(super) fn mark_down(&self, err: &dyn std::fmt::Display) {
        if !self.down.swap(true, Ordering::AcqRel) {
            self.went_down.notify_waiters();
            tracing::warn!(error = %err, "the database is unreachable; answering SERVICE_UNAVAILABLE until it is back");
        }
    }

    fn mark_up(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!("the database is reachable again");
        }
    }
}

/// Probes the database every second, on the probe pool, for as long as
/// the `Database` lives and its pool is open.
pub(super) fn spawn_probe(db: &Database) {
    let super::Backend::Postgres { probe, .. } = &db.backend else { return };
    let probe = probe.clone();
    let health = Arc::downgrade(&db.health);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PROBE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(health) = health.upgrade() else { return };
            if probe.is_closed() {
                return;
            }
            let ping = sea_orm::sqlx::query("SELECT 1").execute(&probe);
            match tokio::time::timeout(PROBE_TIMEOUT, ping).await {
                Ok(Ok(_)) => health.mark_up(),
                Ok(Err(e)) => health.mark_down(&e),
                Err(_) => health.mark_down(&"no answer to the probe within a second"),
            }
        }
    });
}
