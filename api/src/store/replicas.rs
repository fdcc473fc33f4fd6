//! Read replicas (`database.replica_urls`): PostgreSQL streaming replicas
//! that a request's queries read from, while mutations and everything
//! inside them run on the primary.
//!
//! - **Freshness.** A monitor asks the primary for its WAL position and each
//!   replica for what it has replayed, every [`POLL`]. A replica's lag is how
//!   long ago the primary stood where the replica stands now; one that lags
//!   past `database.replica_max_lag_ms`, or does not answer, is not read
//!   from until it catches up (reads go to the primary meanwhile).
//! - **Read your writes.** A transaction that wrote raises its agency's
//!   mark, the primary's WAL position after the commit, in the shared cache
//!   (Redis, so every API replica sees it) before the request answers. A
//!   later read of that agency goes to a replica only if the monitor has
//!   seen it replay past the mark; otherwise to the primary. The mark is
//!   per agency, not per client: a teammate, another device and a
//!   subscription's refetch see the write too.
//! - **When in doubt, the primary.** The mark cannot be read (Redis down)
//!   or written (the primary did not say its position): reads go to the
//!   primary for a while. Stale data is never the fallback.

use std::{
    collections::VecDeque,
    str::FromStr as _,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use sea_orm::sqlx::{
    self, ConnectOptions as _,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
};
use secrecy::ExposeSecret as _;
use uuid::Uuid;

use crate::{cache::Cache, config::Settings};

/// How often the monitor asks where the primary and the replicas stand.
const POLL: Duration = Duration::from_millis(100);
/// How long a mark lives: longer than any lag a replica is read at.
const MARK_TTL: Duration = Duration::from_secs(60);
/// A mark that sends the agency's reads to the primary until it expires.
const PRIMARY_ONLY: u64 = u64::MAX >> 12;
/// The primary's positions remembered, to date a replica's.
const SAMPLES: usize = 256;

pub(crate) struct Replicas {
    replicas: Vec<Replica>,
    max_lag: Duration,
    marks: Arc<dyn Cache>,
    next: AtomicUsize,
    /// The primary's WAL positions, newest last, with when they were read.
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

struct Replica {
    /// `host:port/database`, for logs and metrics (no credentials).
    name: String,
    pool: PgPool,
    replayed: AtomicU64,
    usable: AtomicBool,
}

impl Replicas {
    /// Pools for `database.replica_urls` (connected lazily, each switching
    /// to the runtime role like the primary's), and their monitor.
    pub(crate) fn connect(settings: &Settings, primary: PgPool, marks: Arc<dyn Cache>) -> anyhow::Result<Option<Arc<Self>>> {
        let d = &settings.database;
        if d.replica_urls.is_empty() {
            return Ok(None);
        }
        let mut replicas = Vec::new();
        for (i, url) in d.replica_urls.iter().enumerate() {
            let options = PgConnectOptions::from_str(url.expose_secret())
                .with_context(|| format!("parsing database.replica_urls[{i}]"))?
                .log_statements(log::LevelFilter::Debug)
                .log_slow_statements(log::LevelFilter::Warn, Duration::from_millis(settings.log.slow_statement_ms))
                .options([("statement_timeout", d.statement_timeout_ms.to_string())]);
            let name = format!("{}:{}/{}", options.get_host(), options.get_port(), options.get_database().unwrap_or_default());
            // Reads wait for a replica's connection no longer than a poll:
            // the primary answers instead.
            let pool = super::pg_pool(PgPoolOptions::new().max_connections(d.max_connections).acquire_timeout(Duration::from_secs(1)), &d.runtime_role)
                .connect_lazy_with(options);
            replicas.push(Replica { name, pool, replayed: AtomicU64::new(0), usable: AtomicBool::new(false) });
        }
        let this = Arc::new(Self {
            replicas,
            max_lag: Duration::from_millis(d.replica_max_lag_ms),
            marks,
            next: AtomicUsize::new(0),
            samples: Mutex::new(VecDeque::with_capacity(SAMPLES)),
        });
        tokio::spawn(monitor(Arc::downgrade(&this), primary));
        Ok(Some(this))
    }

    /// Each replica's name and whether queries read from it now.
    pub(crate) fn usable(&self) -> Vec<(String, bool)> {
        self.replicas.iter().map(|r| (r.name.clone(), r.usable.load(Ordering::Acquire))).collect()
    }

    pub(crate) fn report_pools(&self) {
        for r in &self.replicas {
            super::report_pool(&r.name, &r.pool);
        }
    }

    /// A replica fresh enough for `tenant`'s next read, if any.
    pub(crate) async fn reader(&self, tenant: Uuid) -> Option<&PgPool> {
        if !self.replicas.iter().any(|r| r.usable.load(Ordering::Acquire)) {
            return None;
        }
        let mark = match self.marks.get(&mark_key(tenant)).await {
            Ok(v) => v.as_deref().and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok()).unwrap_or(0),
            Err(_) => return None,
        };
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.replicas[(start + i) % n])
            .find(|r| r.usable.load(Ordering::Acquire) && r.replayed.load(Ordering::Acquire) >= mark)
            .map(|r| &r.pool)
    }

    /// A replica refused a transaction: not read from until the monitor
    /// reaches it again.
    pub(crate) fn failed(&self, pool: &PgPool, err: &impl std::fmt::Display) {
        if let Some(r) = self.replicas.iter().find(|r| std::ptr::eq(&r.pool, pool))
            && r.usable.swap(false, Ordering::AcqRel)
        {
            tracing::warn!(replica = %r.name, error = %err, "a read replica failed; reading from the primary until it answers");
        }
    }

    /// After `tenant`'s transaction committed a write on `primary`: raises
    /// the agency's mark to the primary's position now, which is past the
    /// commit.
    pub(crate) async fn wrote(&self, primary: &PgPool, tenant: Uuid) {
        let mark = match wal_position(primary, "pg_current_wal_lsn()").await {
            Ok(Some(lsn)) => lsn,
            other => {
                tracing::warn!(outcome = ?other, "reading the primary's WAL position after a write; the agency reads from the primary for a minute");
                PRIMARY_ONLY
            }
        };
        if let Err(e) = self.marks.raise(&mark_key(tenant), mark, MARK_TTL).await {
            // Its readers cannot read the mark either, and so use the primary.
            tracing::debug!(error = %e, "raising an agency's read-your-writes mark");
        }
    }

    /// One round of the monitor.
    async fn poll(&self, primary: &PgPool) {
        let now = Instant::now();
        // The primary's own health is the probe's business; without a fresh
        // position no lag can be dated, so the lags grow.
        if let Ok(Some(lsn)) = wal_position(primary, "pg_current_wal_lsn()").await {
            let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
            if samples.len() == SAMPLES {
                samples.pop_front();
            }
            samples.push_back((now, lsn));
        }
        let positions = futures::future::join_all(self.replicas.iter().map(|r| async move {
            tokio::time::timeout(Duration::from_secs(1), wal_position(&r.pool, "pg_last_wal_replay_lsn()")).await
        }))
        .await;
        for (r, position) in self.replicas.iter().zip(positions) {
            let usable = match position {
                Ok(Ok(Some(replayed))) => {
                    r.replayed.store(replayed, Ordering::Release);
                    let lag = self.lag(replayed, now);
                    crate::metrics::replica(&r.name, lag.min(Duration::from_secs(3600)).as_secs_f64());
                    lag <= self.max_lag
                }
                Ok(Ok(None)) => {
                    tracing::warn!(replica = %r.name, "database.replica_urls names a server that is not a streaming replica; not reading from it");
                    false
                }
                Ok(Err(_)) | Err(_) => false,
            };
            let was = r.usable.swap(usable, Ordering::AcqRel);
            if was != usable {
                if usable {
                    tracing::info!(replica = %r.name, "reading from a replica");
                } else {
                    tracing::warn!(replica = %r.name, max_lag_ms = self.max_lag.as_millis() as u64, "a read replica is down or behind; reading from the primary");
                }
            }
            crate::metrics::replica_usable(&r.name, usable);
        }
    }

    /// How long ago the primary stood at or before `replayed`: the replica
    /// holds everything committed up to then. Older than every sample: as
    /// old as the oldest, at least.
    fn lag(&self, replayed: u64, now: Instant) -> Duration {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        match samples.iter().rev().find(|(_, lsn)| *lsn <= replayed) {
            Some((at, _)) => now.saturating_duration_since(*at),
            None => samples.front().map_or(Duration::MAX, |(at, _)| now.saturating_duration_since(*at) + POLL),
        }
    }
}

async fn monitor(this: Weak<Replicas>, primary: PgPool) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(this) = this.upgrade() else { return };
        this.poll(&primary).await;
    }
}

/// `position` (a `pg_lsn` expression) as a number; `None` when it is null
/// (`pg_last_wal_replay_lsn()` on a server that is not a replica).
async fn wal_position(pool: &PgPool, position: &'static str) -> Result<Option<u64>, sqlx::Error> {
    let sql = format!("SELECT ({position} - '0/0'::pg_lsn)::bigint");
    let (value,): (Option<i64>,) = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_one(pool).await?;
    Ok(value.map(|v| u64::try_from(v).unwrap_or(0)))
}

fn mark_key(tenant: Uuid) -> String {
    crate::cache::tenant_key(tenant, "written-lsn", "")
}
