//! The hot-state adapter: Redis in production, in-process by default, behind
//! one small trait. Callers build keys with [`tenant_key`] for anything
//! tenant-owned, so no key of one tenant can name another's value.

mod breaker;
pub mod bus;
pub mod gcra;
mod memory;
mod redis;

use std::time::Duration;

use uuid::Uuid;

pub use self::{breaker::Breaker, memory::MemoryCache, redis::RedisCache};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache backend unreachable: {0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait Cache: Send + Sync + std::fmt::Debug {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError>;
    async fn delete(&self, key: &str) -> Result<(), CacheError>;
    /// Several keys in one round trip, in order.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError>;
    /// Adds one to a counter and returns the new count. The first increment
    /// starts the window: the counter disappears `window` later.
    async fn incr(&self, key: &str, window: Duration) -> Result<u64, CacheError>;
    /// One atomic step over several counters of the same window: when every
    /// counter is below its limit, each is incremented and the new counts
    /// are returned; otherwise nothing changes and `Err(i)` names the first
    /// counter at its limit. Concurrent callers can never all pass a limit.
    async fn reserve(&self, counters: &[(String, u64)], window: Duration) -> Result<Result<Vec<u64>, usize>, CacheError>;
    /// Gives back one unit of each counter (never below zero).
    async fn release(&self, keys: &[String]) -> Result<(), CacheError>;
    /// Raises a high-water mark to at least `value` (never lowers it, however
    /// writers race), keeping it `ttl` from now.
    async fn raise(&self, key: &str, value: u64, ttl: Duration) -> Result<(), CacheError>;
    /// One atomic step over several rate-limit buckets (see [`gcra`]):
    /// each is charged its cost when all have room, none otherwise.
    async fn take(&self, buckets: &[gcra::Bucket]) -> Result<gcra::Taken, CacheError>;
    /// Succeeds when the backend answers.
    async fn ping(&self) -> Result<(), CacheError>;
    fn backend_name(&self) -> &'static str;
    /// Whether the backend is known to be unreachable right now (its
    /// breaker is open): callers skip it instead of trying.
    fn is_degraded(&self) -> bool {
        false
    }
    /// The invalidations every replica hears (see [`bus`]).
    fn bus(&self) -> &bus::Bus;
    /// Sends an invalidation to every replica, this one included. Best
    /// effort: a replica that misses it is told so by its bus.
    async fn publish(&self, message: &[u8]);
}

/// A key outside any tenant: `p:{kind}:{rest}`. Backends add their own
/// deployment prefix (`redis.key_prefix`).
pub fn platform_key(kind: &str, rest: &str) -> String {
    format!("p:{kind}:{rest}")
}

/// A key inside one tenant's namespace: `t:{tenant}:{kind}:{rest}`.
pub fn tenant_key(tenant: Uuid, kind: &str, rest: &str) -> String {
    format!("t:{tenant}:{kind}:{rest}")
}
