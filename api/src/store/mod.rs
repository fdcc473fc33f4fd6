//! Database access: the backends, and functions `(&conn, tenant, args) ->
//! models`. Nothing here knows about GraphQL.
//!
//! Tenant data is only ever reached through [`TenantDb`], the per-request
//! handle that scopes every statement to one tenant.

pub mod api_keys;
pub mod audit;
pub mod clients;
mod health;
pub mod documents;
pub mod logins;
pub mod page;
pub mod platform;
pub mod projects;
pub mod refresh_token;
mod replicas;
pub mod revocations;
pub mod rows;
pub mod scoped;
pub mod sessions;
pub mod tenants;
pub mod trusted_documents;
pub mod upload_reservations;
pub mod users;
pub mod validate;

use std::{str::FromStr, sync::Arc, time::Duration};

use tokio::sync::{Mutex, OwnedMutexGuard};

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    DatabaseConnection, DbErr, SqlxPostgresConnector, SqlxSqliteConnector,
    sqlx::{
        self, AssertSqlSafe, ConnectOptions as _, Executor as _,
        postgres::{PgConnectOptions, PgPool, PgPoolOptions},
        sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
    },
};
use uuid::Uuid;

pub use scoped::TenantDb;

use crate::config::Settings;

/// The configured database: PostgreSQL in production, a SQLite file by
/// default. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    pub(crate) backend: Backend,
    health: Arc<health::DbHealth>,
    /// Read replicas, when `database.replica_urls` names any.
    replicas: Option<Arc<replicas::Replicas>>,
}

#[derive(Clone)]
pub(crate) enum Backend {
    /// `probe`: a pool of one connection of its own, so that readiness and
    /// the outage probe are never starved by a busy main pool.
    Postgres { pool: PgPool, orm: DatabaseConnection, probe: PgPool },
    Sqlite { orm: DatabaseConnection, writer: Writer },
}

/// SQLite's one writer, as an in-process turn: every transaction that may
/// write takes it before `BEGIN IMMEDIATE` and holds it until it ends.
/// Writers then queue here in order, holding no pooled connection, instead
/// of failing with "database is locked" (a deferred transaction that read
/// first cannot wait for the write lock) or polling SQLite's busy handler;
/// readers never take it and stay concurrent under WAL.
#[derive(Clone)]
pub(crate) struct Writer {
    turn: Arc<Mutex<()>>,
    wait: Duration,
}

/// A writer's turn, held until dropped; nothing on PostgreSQL.
#[derive(Debug)]
pub struct WriteTurn {
    _turn: Option<OwnedMutexGuard<()>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.backend_name())
    }
}

impl Database {
    /// Connects the server's pool. On PostgreSQL every connection switches
    /// to the runtime role first, so RLS applies to all it runs.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let url = settings.database_url();
        let max = settings.database.max_connections;
        let acquire = Duration::from_secs(settings.database.acquire_timeout_secs);
        if url.starts_with("sqlite:") {
            if settings.database.url.is_none() {
                std::fs::create_dir_all(&settings.data_dir).with_context(|| {
                    format!("creating the data directory {} (setting data_dir)", settings.data_dir.display())
                })?;
            }
            let options = SqliteConnectOptions::from_str(&url)
                .context("parsing database.url")?
                .log_statements(log::LevelFilter::Debug)
                .log_slow_statements(log::LevelFilter::Warn, slow_statement(settings))
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(max)
                .acquire_timeout(acquire)
                .connect_with(options)
                .await
                .with_context(|| format!("opening the SQLite database {url} (setting database.url)"))?;
            let writer = Writer { turn: Arc::new(Mutex::new(())), wait: acquire };
            let backend = Backend::Sqlite { orm: SqlxSqliteConnector::from_sqlx_sqlite_pool(pool), writer };
            return Ok(Self { backend, health: Arc::new(health::DbHealth::default()), replicas: None });
        }
        let role = settings.database.runtime_role.clone();
        check_runtime_role(&url, &role).await?;
        let d = &settings.database;
        // Sent with the start-up message: no round trip of their own.
        let options = PgConnectOptions::from_str(&url)
            .context("parsing database.url")?
            .log_statements(log::LevelFilter::Debug)
            .log_slow_statements(log::LevelFilter::Warn, slow_statement(settings))
            .options([
            ("statement_timeout", d.statement_timeout_ms.to_string()),
            ("lock_timeout", d.lock_timeout_ms.to_string()),
            ("idle_in_transaction_session_timeout", d.idle_in_transaction_timeout_ms.to_string()),
        ]);
        let pool = pg_pool(PgPoolOptions::new().max_connections(max).acquire_timeout(acquire), &role)
            .connect_with(options.clone())
            .await
            .context("connecting to PostgreSQL (setting database.url)")?;
        let probe = pg_pool(PgPoolOptions::new().max_connections(1).acquire_timeout(health::PROBE_TIMEOUT), &role)
            .connect_lazy_with(options);
        let orm = SqlxPostgresConnector::from_sqlx_postgres_pool(pool.clone());
        let db = Self { backend: Backend::Postgres { pool, orm, probe }, health: Arc::new(health::DbHealth::default()), replicas: None };
        health::spawn_probe(&db);
        Ok(db)
    }

    /// Reads queries from `database.replica_urls` from now on, keeping each
    /// agency's read-your-writes mark in `marks` (Redis when configured, so
    /// every API replica sees it). Call before the handle is cloned.
    pub fn with_replicas(mut self, settings: &Settings, marks: Arc<dyn crate::cache::Cache>) -> anyhow::Result<Self> {
        if let Backend::Postgres { probe, .. } = &self.backend {
            self.replicas = replicas::Replicas::connect(settings, probe.clone(), marks)?;
        }
        Ok(self)
    }

    /// Each read replica (`host:port/database`) and whether queries read
    /// from it now (answering, and within `database.replica_max_lag_ms`).
    pub fn replicas_usable(&self) -> Vec<(String, bool)> {
        self.replicas.as_ref().map(|r| r.usable()).unwrap_or_default()
    }

    /// A plain connection for platform tables (tenants, platform admins) and
    /// migrations; never for tenant tables.
    pub fn platform(&self) -> &DatabaseConnection {
        match &self.backend {
            Backend::Postgres { orm, .. } | Backend::Sqlite { orm, .. } => orm,
        }
    }

    /// Waits for the SQLite writer's turn, at most
    /// `database.acquire_timeout_secs`; past that the database is busy (an
    /// acquire timeout: `SERVICE_UNAVAILABLE`). Tenant handles take it
    /// themselves: this is for writes through [`Self::platform`].
    /// PostgreSQL needs no turn.
    pub async fn write_turn(&self) -> Result<WriteTurn, DbErr> {
        let Backend::Sqlite { writer, .. } = &self.backend else {
            return Ok(WriteTurn { _turn: None });
        };
        match tokio::time::timeout(writer.wait, writer.turn.clone().lock_owned()).await {
            Ok(turn) => Ok(WriteTurn { _turn: Some(turn) }),
            Err(_) => Err(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)),
        }
    }

    /// `SERVICE_UNAVAILABLE` at once while the database is known to be
    /// down, so that no request waits on it.
    pub fn ensure_up(&self) -> crate::error::ApiResult<()> {
        self.health.ensure_up()
    }

    /// Notes a failed statement: a connection-class failure marks the
    /// database down until the probe reaches it again.
    pub(crate) fn observe(&self, err: &DbErr) {
        if crate::error::db_unreachable(err) {
            self.health.mark_down(err);
        }
    }

    /// The handle through which one tenant's statements run; it may write.
    pub fn scoped(&self, tenant: Uuid) -> TenantDb {
        TenantDb::new(self.clone(), tenant, true)
    }

    /// A handle that only reads: on SQLite it never waits for the writer.
    /// It reads the primary (for work that must see the very latest, such
    /// as the sweep deciding what is unreachable).
    pub fn scoped_reader(&self, tenant: Uuid) -> TenantDb {
        TenantDb::new(self.clone(), tenant, false)
    }

    /// A request's handle: it reads from a read replica when one is fresh
    /// enough for the agency (see `replicas`), until it becomes a writer.
    pub fn scoped_query(&self, tenant: Uuid) -> TenantDb {
        TenantDb::new(self.clone(), tenant, false).on_replicas()
    }

    /// Reports each pool's connections to the metrics (when scraped).
    pub fn report_pools(&self) {
        match &self.backend {
            Backend::Postgres { pool, .. } => report_pool("primary", pool),
            Backend::Sqlite { orm, .. } => report_pool("primary", orm.get_sqlite_connection_pool()),
        }
        if let Some(replicas) = &self.replicas {
            replicas.report_pools();
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Postgres { .. } => "postgresql",
            Backend::Sqlite { .. } => "sqlite",
        }
    }

    /// One round trip on the probe's own connection (PostgreSQL), so a busy
    /// pool does not make the server look dead.
    pub async fn ping(&self) -> Result<(), DbErr> {
        match &self.backend {
            Backend::Postgres { probe, .. } => {
                sqlx::query("SELECT 1").execute(probe).await.map(|_| ()).map_err(|e| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e.into())))
            }
            Backend::Sqlite { orm, .. } => orm.ping().await,
        }
    }

    pub async fn close(&self) {
        if let Backend::Postgres { probe, .. } = &self.backend {
            probe.close().await;
        }
        let _ = self.platform().close_by_ref().await;
    }
}

/// Pool options every PostgreSQL pool of the server shares: each new
/// connection switches to the runtime role first.
/// A pooled connection idle at least this long is checked (a `Sync` and its
/// answer) before a request gets it; one reused sooner is not. sqlx checks
/// every connection on release already, so only a connection that sat
/// through an outage or a server restart can come back dead, and that is
/// one that has been idle (the probe marks the database down within a
/// second). Checking every acquire would cost each request a round trip.
const CHECK_IF_IDLE_FOR: Duration = Duration::from_secs(1);

fn pg_pool(options: PgPoolOptions, role: &str) -> PgPoolOptions {
    let role = role.to_owned();
    let options = options.test_before_acquire(false).before_acquire(|conn, meta| {
        Box::pin(async move {
            if meta.idle_for >= CHECK_IF_IDLE_FOR {
                sqlx::Connection::ping(conn).await?;
            }
            Ok(true)
        })
    });
    options.after_connect(move |conn, _meta| {
        let role = role.clone();
        Box::pin(async move {
            if !role.is_empty() {
                // `role` is validated to [a-z0-9_] by the settings.
                conn.execute(sqlx::raw_sql(AssertSqlSafe(format!("SET ROLE {role}")))).await?;
            }
            Ok(())
        })
    })
}

fn report_pool<DB: sqlx::Database>(name: &str, pool: &sqlx::Pool<DB>) {
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
    crate::metrics::pool(name, pool.size().saturating_sub(idle), idle, pool.options().get_max_connections());
}

/// `col` contains `text`, case-insensitively and the same on both backends
/// (`LOWER(col) LIKE '%text%' ESCAPE '\\'`, the caller's `%` and `_` literal).
pub(crate) fn contains(col: impl sea_orm::sea_query::IntoColumnRef, text: &str) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::{Expr, ExprTrait as _, Func, LikeExpr};
    let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    Expr::expr(Func::lower(Expr::col(col))).like(LikeExpr::new(format!("%{escaped}%")).escape('\\'))
}

/// The filters every domain list shares: a name search and a creation range.
#[derive(Debug, Default, Clone)]
pub struct Common {
    pub name_contains: Option<String>,
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
}

impl Common {
    pub(crate) fn apply<E: sea_orm::EntityTrait>(
        &self,
        mut q: sea_orm::Select<E>,
        name: E::Column,
        created: E::Column,
    ) -> sea_orm::Select<E> {
        use sea_orm::{ColumnTrait as _, QueryFilter as _};
        if let Some(n) = &self.name_contains {
            q = q.filter(contains(name, n));
        }
        if let Some(t) = self.created_after {
            q = q.filter(created.gte(t));
        }
        if let Some(t) = self.created_before {
            q = q.filter(created.lt(t));
        }
        q
    }
}

/// A unique-constraint violation is the caller's conflict (`message`);
/// anything else is internal.
pub(crate) fn conflict_on_unique(err: DbErr, message: &str) -> crate::error::ApiError {
    if matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) {
        crate::error::ApiError::Conflict(message.to_owned())
    } else {
        err.into()
    }
}

/// A foreign-key violation means a row this one points at is gone (a
/// concurrent delete between a check and an insert): the caller's `what`
/// is not found. Anything else is internal.
pub(crate) fn not_found_on_foreign_key(err: DbErr, what: &'static str) -> crate::error::ApiError {
    if matches!(err.sql_err(), Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_))) {
        crate::error::ApiError::NotFound(what)
    } else {
        err.into()
    }
}

/// One plain connection up front, so a missing role or a refused login is
/// reported as such (the pool would only say it timed out).
async fn check_runtime_role(url: &str, role: &str) -> anyhow::Result<()> {
    use sea_orm::sqlx::Connection as _;
    let options = PgConnectOptions::from_str(url).context("parsing database.url")?.log_statements(log::LevelFilter::Debug);
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .context("connecting to PostgreSQL (setting database.url)")?;
    if !role.is_empty() {
        conn.execute(sqlx::raw_sql(AssertSqlSafe(format!("SET ROLE {role}"))))
            .await
            .with_context(|| {
                format!("switching to the runtime role `{role}` (setting database.runtime_role); run `aggios migrate up` first, and make the connecting user a member of it")
            })?;
    }
    let _ = conn.close().await;
    Ok(())
}

/// The schema owner's connection, for migrations (`database.migration_url`).
pub async fn connect_owner(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let url = settings.migration_url();
    if url.starts_with("sqlite:") && settings.database.url.is_none() && settings.database.migration_url.is_none() {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating the data directory {} (setting data_dir)", settings.data_dir.display()))?;
    }
    let mut options = sea_orm::ConnectOptions::new(url);
    options
        .sqlx_logging_level(log::LevelFilter::Debug)
        .sqlx_slow_statements_logging_settings(log::LevelFilter::Warn, slow_statement(settings));
    sea_orm::Database::connect(options).await.context("connecting as the schema owner (setting database.migration_url)")
}

/// SQL statements are logged at debug (an operator's `info` shows none), and
/// those slower than `log.slow_statement_ms` at warn, with their text.
fn slow_statement(settings: &Settings) -> Duration {
    Duration::from_millis(settings.log.slow_statement_ms)
}

/// Applies pending migrations through `conn` (the schema owner's).
pub async fn migrate_up(conn: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(conn, None).await
}
