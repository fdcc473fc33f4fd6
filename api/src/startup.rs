//! Building the application: connect the adapters the settings choose, build
//! the schema, bind the listener. Tests call the same `build` with port 0.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use secrecy::ExposeSecret;

use crate::{
    auth::Auth,
    cache::{Cache, MemoryCache, RedisCache},
    config::Settings,
    graphql::{AppSchema, SchemaOptions, build_schema},
    http,
    objects::Objects,
    store::{self, Database},
    tenancy::TenantResolver,
};

/// What every request shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Database,
    pub cache: Arc<dyn Cache>,
    pub objects: Objects,
    pub tenants: TenantResolver,
    pub auth: Auth,
    pub schema: AppSchema,
}

impl AppState {
    /// Connects everything the settings name. Runs migrations first when
    /// `database.migrate_on_start` says so (by default on SQLite only).
    pub async fn connect(settings: Settings) -> anyhow::Result<Self> {
        // Migrations first: they create the runtime role the pool switches to.
        let migrate = settings.database.migrate_on_start.unwrap_or(!settings.database_url().starts_with("postgres"));
        if migrate {
            let owner = store::connect_owner(&settings).await?;
            store::migrate_up(&owner).await.context("running migrations")?;
            owner.close().await.context("closing the migration connection")?;
        }
        let db = Database::connect(&settings).await?;
        let cache: Arc<dyn Cache> = match &settings.redis.url {
            Some(url) => Arc::new(
                RedisCache::new(
                    url.expose_secret(),
                    &settings.redis.key_prefix,
                    settings.redis.pool_size,
                    Duration::from_millis(settings.redis.timeout_ms),
                    Duration::from_millis(settings.redis.breaker_cooldown_ms),
                )
                .context("configuring Redis (setting redis.url)")?,
            ),
            None => Arc::new(MemoryCache::new()),
        };
        let objects = Objects::from_settings(&settings)?;
        let tenants = TenantResolver::new(
            db.clone(),
            cache.clone(),
            settings.server.base_domain.clone(),
            Duration::from_secs(settings.server.tenant_cache_ttl_secs),
        );
        let auth = Auth::new(&settings, cache.clone(), db.clone())?;
        auth.revocations.start(db.clone()).await.context("loading the revocation list")?;
        let schema = build_schema(SchemaOptions { production: settings.is_production() });
        Ok(Self { settings: Arc::new(settings), db, cache, objects, tenants, auth, schema })
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("db", &self.db).finish_non_exhaustive()
    }
}

pub struct Application {
    listener: tokio::net::TcpListener,
    state: AppState,
}

impl Application {
    /// Connects and binds `server.host:server.port` (port 0 picks a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let addr = SocketAddr::new(settings.server.host, settings.server.port);
        let state = AppState::connect(settings).await?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr} (settings server.host, server.port)"))?;
        Ok(Self { listener, state })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish
    /// for up to `server.shutdown_grace_secs`.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let limits = http::server::Limits::from_settings(&self.state.settings.server);
        let db = self.state.db.clone();
        let result = http::server::serve(self.listener, http::routes(self.state), limits, shutdown).await;
        // A statement cut by the shutdown may hold its connection a while;
        // the process does not wait on it.
        if tokio::time::timeout(Duration::from_secs(2), db.close()).await.is_err() {
            tracing::warn!("database connections still busy at exit; leaving them to the server to end");
        }
        result
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
