//! Database access: the backends, and functions `(&conn, tenant, args) ->
//! models`. Nothing here knows about GraphQL.
//!
//! Tenant data is only ever reached through [`TenantDb`], the per-request
//! handle that scopes every statement to one tenant.

pub mod scoped;
pub mod tenants;
pub mod users;

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
            if let Some(parent) = settings.data_dir.to_str().filter(|_| settings.database.url.is_none()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating the data directory `{parent}` (setting data_dir)"))?;
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

/// Applies pending migrations through `conn` (the schema owner's).
pub async fn migrate_up(conn: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(conn, None).await
}
