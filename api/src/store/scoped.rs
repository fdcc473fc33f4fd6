//! [`TenantDb`]: the per-request database handle, scoped to one tenant.
//!
//! On PostgreSQL the handle opens one transaction on first use, and opens it
//! with the tenant already set: `BEGIN` and `set_config('aggios.tenant_id',
//! …, true)` travel as one message, so no statement ever runs on that
//! connection without the tenant (a plan cached for "no tenant" would be
//! reused for real tenants), and the scoping costs no extra round trip.
//! The setting is transaction-local: it cannot outlive the request on a
//! pooled connection. Row-Level Security then applies to every statement.
//!
//! On SQLite (no RLS) the same handle runs a plain transaction; scoping is by
//! the `tenant_id` condition every store function applies. A handle that may
//! write waits for the writer's turn ([`super::Database::write_turn`]) and
//! begins `IMMEDIATE`, so the write lock is its own from `BEGIN` on (a
//! deferred transaction that read first would fail, not wait, if another
//! wrote meanwhile); a reader begins deferred and never waits for writers.
//!
//! Requests that never touch tenant data never take a connection.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, SqliteTransactionMode,
    Statement, TransactionOptions, TransactionTrait,
    RuntimeErr,
    sqlx::{
        self, AssertSqlSafe,
        postgres::{PgPool, Postgres},
    },
};
use sea_orm::sea_query::Values;
use sea_query_sqlx::SqlxValues;
use tokio::sync::Mutex;
use tracing::Instrument as _;
use uuid::Uuid;

use super::{Backend, Database, WriteTurn};

enum Tx {
    /// Dropping it unfinished (a cancelled request) queues a ROLLBACK.
    Postgres(sqlx::Transaction<'static, Postgres>),
    /// A writer holds the turn until the transaction ends (fields drop in
    /// order: the rollback is queued before the turn passes on).
    Sqlite { tx: DatabaseTransaction, turn: Option<WriteTurn> },
}

/// The open transaction, whether the next one may write, and whether any
/// statement of it might have written; `span`: the open transaction's, the
/// parent of its statements' (see `telemetry`).
struct State {
    tx: Option<Tx>,
    writes: bool,
    wrote: bool,
    span: tracing::Span,
}

pub struct TenantDb {
    db: Database,
    tenant: Uuid,
    state: Mutex<State>,
    statements: AtomicU64,
    /// A reader's transaction may begin on a read replica (see
    /// `replicas`); cleared for good once the handle writes.
    use_replicas: AtomicBool,
    /// The open transaction is a replica's.
    on_replica: AtomicBool,
}

impl std::fmt::Debug for TenantDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantDb").field("tenant", &self.tenant).finish_non_exhaustive()
    }
}

impl TenantDb {
    pub(super) fn new(db: Database, tenant: Uuid, writes: bool) -> Self {
        Self {
            db,
            tenant,
            state: Mutex::new(State { tx: None, writes, wrote: false, span: tracing::Span::none() }),
            statements: AtomicU64::new(0),
            use_replicas: AtomicBool::new(false),
            on_replica: AtomicBool::new(false),
        }
    }

    /// Lets the handle's reads begin on a read replica.
    pub(super) fn on_replicas(self) -> Self {
        self.use_replicas.store(self.db.replicas.is_some(), Ordering::Release);
        self
    }

    pub fn tenant(&self) -> Uuid {
        self.tenant
    }

    /// Statements run through this handle so far (BEGIN and COMMIT excluded).
    pub fn statement_count(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    async fn begin(&self, writes: bool) -> Result<Tx, DbErr> {
        // Known down: fail at once, as a connection error, instead of
        // waiting out the acquire timeout.
        let went_down = self.db.health.went_down.notified();
        tokio::pin!(went_down);
        went_down.as_mut().enable();
        if self.db.ensure_up().is_err() {
            return Err(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::ConnectionClosed));
        }
        let acquiring = crate::metrics::Acquiring::start();
        let began = tokio::select! {
            began = self.begin_on_backend(writes) => began,
            // Found down while this request waited for a connection.
            () = &mut went_down => Err(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::ConnectionClosed)),
        };
        drop(acquiring);
        if let Err(e) = &began {
            self.db.observe(e);
        }
        began
    }

    async fn begin_on_backend(&self, writes: bool) -> Result<Tx, DbErr> {
        match &self.db.backend {
            Backend::Postgres { pool, .. } => {
                self.on_replica.store(false, Ordering::Release);
                if !writes
                    && self.use_replicas.load(Ordering::Acquire)
                    && let Some(replicas) = &self.db.replicas
                    && let Some(replica) = replicas.reader(self.tenant).await
                {
                    match begin_postgres(replica, self.tenant).await {
                        Ok(tx) => {
                            self.on_replica.store(true, Ordering::Release);
                            return Ok(Tx::Postgres(tx));
                        }
                        // The primary answers instead.
                        Err(e) => replicas.failed(replica, &e),
                    }
                }
                begin_postgres(pool, self.tenant).await.map(Tx::Postgres)
            }
            Backend::Sqlite { orm, .. } if writes => {
                let turn = self.db.write_turn().await?;
                let immediate = TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..TransactionOptions::default()
                };
                let tx = orm.begin_with_options(immediate).await?;
                Ok(Tx::Sqlite { tx, turn: Some(turn) })
            }
            Backend::Sqlite { orm, .. } => Ok(Tx::Sqlite { tx: orm.begin().await?, turn: None }),
        }
    }

    /// From now on the handle may write: on SQLite a reader transaction still
    /// open (what authentication read) commits, having written nothing, and
    /// the next statement begins as a writer. PostgreSQL is unaffected.
    pub async fn begin_writing(&self) -> Result<(), DbErr> {
        let mut state = self.state.lock().await;
        state.writes = true;
        // A replica's transaction (what authentication read) ends unused:
        // the writes and what they read run on the primary.
        self.use_replicas.store(false, Ordering::Release);
        if self.on_replica.swap(false, Ordering::AcqRel) {
            state.tx = None;
        }
        match state.tx.take() {
            Some(Tx::Sqlite { tx, turn: None }) => tx.commit().await,
            open => {
                state.tx = open;
                Ok(())
            }
        }
    }

    /// Ends the request's transaction: commit when `commit`, else roll back.
    /// A handle never used does nothing.
    ///
    /// On PostgreSQL a transaction that ran nothing but `SELECT`s has
    /// nothing to commit: it is dropped instead, which queues its `ROLLBACK`
    /// on the connection without waiting for it. The pool's check of the
    /// connection on release then sends it with its own message, so a read
    /// costs one round trip less, and the outcome is the same as a commit.
    pub async fn finish(&self, commit: bool) -> Result<(), DbErr> {
        let (tx, wrote, span) = {
            let mut state = self.state.lock().await;
            (state.tx.take(), std::mem::take(&mut state.wrote), std::mem::replace(&mut state.span, tracing::Span::none()))
        };
        let Some(tx) = tx else {
            return Ok(());
        };
        // Held to the end: the span lasts until the transaction has ended.
        span.record("outcome", match (commit, wrote) {
            (false, _) => "rollback",
            (true, false) => "read",
            (true, true) => "commit",
        });
        match (tx, commit) {
            (Tx::Postgres(tx), true) if !wrote => {
                drop(tx);
                Ok(())
            }
            (Tx::Postgres(tx), true) => {
                tx.commit().await.map_err(exec_err)?;
                // Before the answer: the agency's next read must see it.
                if let (Some(replicas), Backend::Postgres { pool, .. }) = (&self.db.replicas, &self.db.backend) {
                    replicas.wrote(pool, self.tenant).await;
                }
                Ok(())
            }
            (Tx::Postgres(tx), false) => tx.rollback().await.map_err(exec_err),
            (Tx::Sqlite { tx, turn }, commit) => {
                let ended = if commit { tx.commit().await } else { tx.rollback().await };
                // The next writer's turn comes only once this one has ended.
                drop(turn);
                ended
            }
        }
    }

    /// Runs `f` on the open transaction, opening it first if needed.
    /// `reads_only`: the statement is a plain `SELECT`, which cannot write.
    async fn with_tx<T>(
        &self,
        reads_only: bool,
        sql: &str,
        f: impl AsyncFnOnce(&mut Tx) -> Result<T, DbErr>,
    ) -> Result<T, DbErr> {
        let mut state = self.state.lock().await;
        let system = self.db.backend_name();
        // A statement that may write, in a replica's transaction (a reader
        // that turned out to write): it and all after it run on the primary.
        if !reads_only && self.on_replica.swap(false, Ordering::AcqRel) {
            self.use_replicas.store(false, Ordering::Release);
            state.tx = None;
        }
        if state.tx.is_none() {
            let span = crate::telemetry::db_transaction(system);
            state.tx = Some(self.begin(state.writes).instrument(span.clone()).await?);
            state.span = span;
        }
        state.wrote |= !reads_only;
        self.statements.fetch_add(1, Ordering::Relaxed);
        let span = crate::telemetry::db_statement(&state.span, system, sql);
        match state.tx.as_mut() {
            Some(tx) => f(tx).instrument(span).await,
            None => Err(DbErr::Custom("transaction vanished".into())),
        }
    }
}

/// `BEGIN` with the tenant set, in one round trip. The tenant is a `Uuid`,
/// so its text form is a safe literal.
async fn begin_postgres(pool: &PgPool, tenant: Uuid) -> Result<sqlx::Transaction<'static, Postgres>, DbErr> {
    let begin = format!(
        "BEGIN; SELECT set_config('{}', '{}', true)",
        migration::TENANT_SETTING,
        tenant.hyphenated()
    );
    pool.begin_with(AssertSqlSafe(begin)).await.map_err(query_err)
}

fn exec_err(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(e.into()))
}

fn query_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(e.into()))
}

/// A plain `SELECT` (no `WITH`, which may hide a write; no
/// `INSERT … RETURNING`, which reads back what it wrote). The server's own
/// statements call no function with side effects.
fn is_select(sql: &str) -> bool {
    sql.trim_start().get(..7).is_some_and(|head| head.eq_ignore_ascii_case("SELECT "))
}

fn pg_query(stmt: &Statement) -> sqlx::query::Query<'_, Postgres, SqlxValues> {
    let values = stmt.values.clone().unwrap_or(Values(Vec::new()));
    sqlx::query_with(AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values))
}

#[async_trait::async_trait]
impl ConnectionTrait for TenantDb {
    fn get_database_backend(&self) -> DbBackend {
        match self.db.backend {
            Backend::Postgres { .. } => DbBackend::Postgres,
            Backend::Sqlite { .. } => DbBackend::Sqlite,
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.with_tx(false, &stmt.sql, async |tx| match tx {
            Tx::Postgres(conn) => {
                pg_query(&stmt).execute(&mut **conn).await.map(Into::into).map_err(exec_err)
            }
            Tx::Sqlite { tx: t, .. } => t.execute_raw(stmt.clone()).await,
        })
        .await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.with_tx(false, sql, async |tx| match tx {
            Tx::Postgres(conn) => sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
                .execute(&mut **conn)
                .await
                .map(Into::into)
                .map_err(exec_err),
            Tx::Sqlite { tx: t, .. } => t.execute_unprepared(sql).await,
        })
        .await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.with_tx(is_select(&stmt.sql), &stmt.sql, async |tx| match tx {
            Tx::Postgres(conn) => pg_query(&stmt)
                .fetch_optional(&mut **conn)
                .await
                .map(|row| row.map(Into::into))
                .map_err(query_err),
            Tx::Sqlite { tx: t, .. } => t.query_one_raw(stmt.clone()).await,
        })
        .await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.with_tx(is_select(&stmt.sql), &stmt.sql, async |tx| match tx {
            Tx::Postgres(conn) => pg_query(&stmt)
                .fetch_all(&mut **conn)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect())
                .map_err(query_err),
            Tx::Sqlite { tx: t, .. } => t.query_all_raw(stmt.clone()).await,
        })
        .await
    }

    fn support_returning(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::is_select;

    #[test]
    fn only_a_plain_select_counts_as_a_read() {
        assert!(is_select(r#"SELECT "clients"."id" FROM "clients""#));
        assert!(is_select("  select id from users"));
        assert!(!is_select("INSERT INTO audit_events (id) VALUES ($1) RETURNING id"));
        assert!(!is_select("UPDATE documents SET name = $1 RETURNING *"));
        assert!(!is_select("WITH gone AS (DELETE FROM projects RETURNING id) SELECT count(*) FROM gone"));
        assert!(!is_select("SELECTED"));
        assert!(!is_select(""));
    }
}
