//! Database access: the backends, and functions `(&conn, tenant, args) ->
//! models`. Nothing here knows about GraphQL.
//!
//! Tenant data is only ever reached through [`TenantDb`], the per-request
//! handle that scopes every statement to one tenant.

pub mod api_keys;
pub mod audit;
pub mod clients;
pub mod documents;
pub mod logins;
pub mod page;
pub mod platform;
pub mod projects;
pub mod scoped;
pub mod sessions;
pub mod tenants;
pub mod upload_reservations;
pub mod users;
pub mod validate;

use std::{str::FromStr, time::Duration};

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    DatabaseConnection, DbErr, SqlxPostgresConnector, SqlxSqliteConnector,
    sqlx::{
        self, AssertSqlSafe, Executor as _,
        postgres::{PgPool, PgPoolOptions},
        sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
    },
};
use uuid::Uuid;

pub use scoped::TenantDb;

use crate::config::Settings;

/// The configured database: PostgreSQL in production, a SQLite file by
/// default. Cheap to clone.
#[derive(Clone)]
pub enum Database {
    Postgres { pool: PgPool, orm: DatabaseConnection },
    Sqlite { orm: DatabaseConnection },
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
            return Ok(Self::Sqlite { orm: SqlxSqliteConnector::from_sqlx_sqlite_pool(pool) });
        }
        let role = settings.database.runtime_role.clone();
        check_runtime_role(&url, &role).await?;
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(acquire)
            .after_connect(move |conn, _meta| {
                let role = role.clone();
                Box::pin(async move {
                    if !role.is_empty() {
                        // `role` is validated to [a-z0-9_] by the settings.
                        conn.execute(sqlx::raw_sql(AssertSqlSafe(format!("SET ROLE {role}")))).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .context("connecting to PostgreSQL (setting database.url)")?;
        let orm = SqlxPostgresConnector::from_sqlx_postgres_pool(pool.clone());
        Ok(Self::Postgres { pool, orm })
    }

    /// A plain connection for platform tables (tenants, platform admins) and
    /// migrations; never for tenant tables.
    pub fn platform(&self) -> &DatabaseConnection {
        match self {
            Self::Postgres { orm, .. } | Self::Sqlite { orm } => orm,
        }
    }

    /// The handle through which one tenant's statements run.
    pub fn scoped(&self, tenant: Uuid) -> TenantDb {
        TenantDb::new(self.clone(), tenant)
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Postgres { .. } => "postgresql",
            Self::Sqlite { .. } => "sqlite",
        }
    }

    pub async fn ping(&self) -> Result<(), DbErr> {
        self.platform().ping().await
    }

    pub async fn close(&self) {
        let _ = self.platform().close_by_ref().await;
    }
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

/// The first `n` rows (by id) of each parent in `parents`, one statement:
/// `ROW_NUMBER() OVER (PARTITION BY parent ORDER BY id)` in a subquery.
pub(crate) async fn first_per_parent<E>(
    db: &TenantDb,
    tenant_col: E::Column,
    parent_col: E::Column,
    id_col: E::Column,
    parents: &[Uuid],
    n: u64,
) -> Result<Vec<E::Model>, DbErr>
where
    E: sea_orm::EntityTrait,
{
    use sea_orm::{
        ConnectionTrait as _,
        sea_query::{Alias, Asterisk, Expr, ExprTrait as _, Order, Query, WindowStatement},
    };
    let mut window = WindowStatement::partition_by(parent_col);
    window.order_by(id_col, Order::Asc);
    let inner = Query::select()
        .column(Asterisk)
        .expr_window_as(Expr::cust("ROW_NUMBER()"), window, Alias::new("rn"))
        .from(E::default())
        .and_where(Expr::col(tenant_col).eq(db.tenant()))
        .and_where(Expr::col(parent_col).is_in(parents.iter().copied()))
        .to_owned();
    let outer = Query::select()
        .column(Asterisk)
        .from_subquery(inner, Alias::new("ranked"))
        .and_where(Expr::col(Alias::new("rn")).lte(n))
        .order_by(parent_col, Order::Asc)
        .order_by(id_col, Order::Asc)
        .to_owned();
    let stmt = db.get_database_backend().build(&outer);
    E::find().from_raw_sql(stmt).all(db).await
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
    let mut conn = sqlx::PgConnection::connect(url)
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
    sea_orm::Database::connect(&url)
        .await
        .context("connecting as the schema owner (setting database.migration_url)")
}

/// Applies pending migrations through `conn` (the schema owner's).
pub async fn migrate_up(conn: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(conn, None).await
}
