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
//! the `tenant_id` condition every store function applies.
//!
//! Requests that never touch tenant data never take a connection.

use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, Statement,
    TransactionTrait,
    RuntimeErr,
    sqlx::{
        self, AssertSqlSafe,
        postgres::{PgPool, Postgres},
    },
};
use sea_orm::sea_query::Values;
use sea_query_sqlx::SqlxValues;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::{Backend, Database};

enum Tx {
    /// Dropping it unfinished (a cancelled request) queues a ROLLBACK.
    Postgres(sqlx::Transaction<'static, Postgres>),
    Sqlite(DatabaseTransaction),
}

pub struct TenantDb {
    db: Database,
    tenant: Uuid,
    tx: Mutex<Option<Tx>>,
    statements: AtomicU64,
}

impl std::fmt::Debug for TenantDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantDb").field("tenant", &self.tenant).finish_non_exhaustive()
    }
}

impl TenantDb {
    pub(super) fn new(db: Database, tenant: Uuid) -> Self {
        Self { db, tenant, tx: Mutex::new(None), statements: AtomicU64::new(0) }
    }

    pub fn tenant(&self) -> Uuid {
        self.tenant
    }

    /// Statements run through this handle so far (BEGIN and COMMIT excluded).
    pub fn statement_count(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    async fn begin(&self) -> Result<Tx, DbErr> {
        // Known down: fail at once, as a connection error, instead of
        // waiting out the acquire timeout.
        if self.db.ensure_up().is_err() {
            return Err(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::ConnectionClosed));
        }
        let began = match &self.db.backend {
            Backend::Postgres { pool, .. } => begin_postgres(pool, self.tenant).await.map(Tx::Postgres),
            Backend::Sqlite { orm } => orm.begin().await.map(Tx::Sqlite),
        };
        if let Err(e) = &began {
            self.db.observe(e);
        }
        began
    }

    /// Ends the request's transaction: commit when `commit`, else roll back.
    /// A handle never used does nothing.
    pub async fn finish(&self, commit: bool) -> Result<(), DbErr> {
        let Some(tx) = self.tx.lock().await.take() else {
            return Ok(());
        };
        match (tx, commit) {
            (Tx::Postgres(tx), true) => tx.commit().await.map_err(exec_err),
            (Tx::Postgres(tx), false) => tx.rollback().await.map_err(exec_err),
            (Tx::Sqlite(tx), true) => tx.commit().await,
            (Tx::Sqlite(tx), false) => tx.rollback().await,
        }
    }

    /// Runs `f` on the open transaction, opening it first if needed.
    async fn with_tx<T>(
        &self,
        f: impl AsyncFnOnce(&mut Tx) -> Result<T, DbErr>,
    ) -> Result<T, DbErr> {
        let mut guard = self.tx.lock().await;
        if guard.is_none() {
            *guard = Some(self.begin().await?);
        }
        self.statements.fetch_add(1, Ordering::Relaxed);
        match guard.as_mut() {
            Some(tx) => f(tx).await,
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
        self.with_tx(async |tx| match tx {
            Tx::Postgres(conn) => {
                pg_query(&stmt).execute(&mut **conn).await.map(Into::into).map_err(exec_err)
            }
            Tx::Sqlite(t) => t.execute_raw(stmt.clone()).await,
        })
        .await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.with_tx(async |tx| match tx {
            Tx::Postgres(conn) => sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
                .execute(&mut **conn)
                .await
                .map(Into::into)
                .map_err(exec_err),
            Tx::Sqlite(t) => t.execute_unprepared(sql).await,
        })
        .await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.with_tx(async |tx| match tx {
            Tx::Postgres(conn) => pg_query(&stmt)
                .fetch_optional(&mut **conn)
                .await
                .map(|row| row.map(Into::into))
                .map_err(query_err),
            Tx::Sqlite(t) => t.query_one_raw(stmt.clone()).await,
        })
        .await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.with_tx(async |tx| match tx {
            Tx::Postgres(conn) => pg_query(&stmt)
                .fetch_all(&mut **conn)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect())
                .map_err(query_err),
            Tx::Sqlite(t) => t.query_all_raw(stmt.clone()).await,
        })
        .await
    }

    fn support_returning(&self) -> bool {
        true
    }
}
