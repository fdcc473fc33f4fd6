//! Redis through a bb8 pool, shared by every replica.

use std::time::Duration;

use bb8_redis::{RedisConnectionManager, bb8};
use redis::AsyncCommands as _;

use super::{Cache, CacheError};

#[derive(Debug, Clone)]
pub struct RedisCache {
    pool: bb8::Pool<RedisConnectionManager>,
    /// Namespaces every key, so deployments (and test runs) can share one
    /// Redis without reading each other's entries.
    prefix: String,
}

impl RedisCache {
    /// Builds the pool without waiting for Redis: a server that is down at
    /// start-up makes `/readyz` red rather than stopping the API.
    pub fn new(url: &str, prefix: &str, size: u32, connect_timeout: Duration) -> anyhow::Result<Self> {
        let manager = RedisConnectionManager::new(url)?;
        let pool = bb8::Pool::builder()
            .max_size(size)
            .connection_timeout(connect_timeout)
            .build_unchecked(manager);
        Ok(Self { pool, prefix: format!("{prefix}:") })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn conn(&self) -> Result<bb8::PooledConnection<'_, RedisConnectionManager>, CacheError> {
        self.pool.get().await.map_err(|e| CacheError::Unavailable(e.to_string()))
    }
}

fn unavailable(e: redis::RedisError) -> CacheError {
    CacheError::Unavailable(e.to_string())
}

#[async_trait::async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.conn().await?.get(self.key(key)).await.map_err(unavailable)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.conn().await?.pset_ex(self.key(key), value, ms).await.map_err(unavailable)
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.conn().await?.del(self.key(key)).await.map_err(unavailable)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        redis::cmd("MGET").arg(&keys).query_async(&mut *self.conn().await?).await.map_err(unavailable)
    }

    async fn incr(&self, key: &str, window: Duration) -> Result<u64, CacheError> {
        let key = self.key(key);
        let ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        // One round trip; NX keeps the window fixed from the first failure.
        let (count, _): (u64, i64) = redis::pipe()
            .atomic()
            .incr(&key, 1u64)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ms)
            .arg("NX")
            .query_async(&mut *self.conn().await?)
            .await
            .map_err(unavailable)?;
        Ok(count)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let pong: String = redis::cmd("PING").query_async(&mut *self.conn().await?).await.map_err(unavailable)?;
        if pong == "PONG" { Ok(()) } else { Err(CacheError::Unavailable(format!("unexpected PING reply {pong}"))) }
    }

    fn backend_name(&self) -> &'static str {
        "redis"
    }
}
