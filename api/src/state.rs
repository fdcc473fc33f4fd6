//! The application's state: the handles every request shares (settings,
//! database, cache, object storage, tenant resolution, and the services built
//! on them), connected once at start-up. It sits above the services and below
//! the schema and the HTTP layer, which are the only ones to hold it whole;
//! services take the handles they use.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use secrecy::ExposeSecret;

use crate::{
    auth::Auth,
    cache::{Cache, MemoryCache, RedisCache},
    config::Settings,
    files::Files,
    identity::Identity,
    objects::Objects,
    persisted::Persisted,
    rate_limits::RateLimits,
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
    pub files: Files,
    pub identity: Identity,
    pub persisted: Persisted,
    pub rate_limits: RateLimits,
    /// Cancelled when the server begins to stop: long-lived connections
    /// (subscriptions) close then instead of holding the shutdown.
    pub stopping: tokio_util::sync::CancellationToken,
    /// Cancelled at SIGTERM, `server.drain_secs` before `stopping`:
    /// readiness answers 503 meanwhile, so balancers turn away.
    pub draining: tokio_util::sync::CancellationToken,
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
        // Read-your-writes marks live where every API replica sees them.
        let db = db.with_replicas(&settings, cache.clone())?;
        let objects = Objects::from_settings(&settings)?;
        let tenants = TenantResolver::new(
            db.clone(),
            cache.clone(),
            settings.server.base_domain.clone(),
            Duration::from_secs(settings.server.tenant_cache_ttl_secs),
        );
        let auth = Auth::new(&settings, cache.clone(), db.clone())?;
        auth.revocations.start(db.clone()).await.context("loading the revocation list")?;
        let files = Files {
            db: db.clone(),
            objects: objects.clone(),
            storage: Arc::new(settings.storage.clone()),
            tokens: auth.tokens.clone(),
        };
        let identity = Identity { auth: auth.clone(), db: db.clone(), tenants: tenants.clone() };
        let rate_limits = RateLimits::new(settings.rate_limits.clone(), cache.clone());
        let shared = settings.redis.url.is_some().then(|| cache.clone());
        let persisted = Persisted::new(db.clone(), shared, &settings.persisted_queries);
        Ok(Self {
            settings: Arc::new(settings),
            db,
            cache,
            objects,
            tenants,
            auth,
            files,
            identity,
            persisted,
            rate_limits,
            stopping: tokio_util::sync::CancellationToken::new(),
            draining: tokio_util::sync::CancellationToken::new(),
        })
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("db", &self.db).finish_non_exhaustive()
    }
}
