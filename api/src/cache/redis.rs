//! Redis through a bb8 pool, shared by every replica. Every call is bounded
//! by `redis.timeout_ms` and goes through a [`Breaker`]: while Redis is known
//! to be down no request waits on it, callers fall back at once, and a
//! background probe finds out when it is back.

use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};

use bb8_redis::{RedisConnectionManager, bb8};
use redis::AsyncCommands as _;
use tracing::Instrument as _;

use super::{Breaker, Cache, CacheError, bus::Bus, gcra};
use crate::telemetry::redis_command;

#[derive(Debug, Clone)]
pub struct RedisCache {
    pool: bb8::Pool<RedisConnectionManager>,
    /// Namespaces every key, so deployments (and test runs) can share one
    /// Redis without reading each other's entries.
    prefix: String,
    timeout: Duration,
    cooldown: Duration,
    breaker: Arc<Breaker>,
    bus: Bus,
    /// The invalidation channel (`{prefix}:invalidations`).
    channel: String,
}

/// Reserves one unit on each counter when all are below their limits.
/// KEYS: the counters; ARGV[1]: the window in ms; ARGV[1 + i]: the limit of
/// KEYS[i]. Returns {0, counts...} or {i} for the first counter at its limit.
const RESERVE: &str = r"
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i + 1]) then return {i} end
end
local counts = {0}
for i, key in ipairs(KEYS) do
  counts[i + 1] = redis.call('INCR', key)
  redis.call('PEXPIRE', key, ARGV[1], 'NX')
end
return counts
";

/// Raises KEYS[1] to ARGV[1] if that is higher, and keeps it ARGV[2] ms.
const RAISE: &str = r"
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
";

/// Gives back one unit on each counter that is above zero.
const RELEASE: &str = r"
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 0
";

/// One PING on a pooled connection, waiting at least a second: the probe's
/// and readiness's question, asked past the breaker.
async fn ping(pool: &bb8::Pool<RedisConnectionManager>, timeout: Duration) -> Result<(), CacheError> {
    let attempt = async {
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        redis::cmd("PING").query_async::<String>(&mut *conn).await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(timeout.max(Duration::from_secs(1)), attempt).await {
        Ok(Ok(pong)) if pong == "PONG" => Ok(()),
        Ok(Ok(other)) => Err(CacheError::Unavailable(format!("unexpected PING reply {other}"))),
        Ok(Err(e)) => Err(CacheError::Unavailable(e)),
        Err(_) => Err(CacheError::Unavailable("no answer to PING".into())),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisCache {
    /// Builds the pool without waiting for Redis: a server that is down at
    /// start-up makes `/readyz` red rather than stopping the API.
    pub fn new(url: &str, prefix: &str, size: u32, timeout: Duration, cooldown: Duration) -> anyhow::Result<Self> {
        let manager = RedisConnectionManager::new(url)?;
        // Connections are made ahead of need (they are multiplexed and
        // cheap), so a burst of requests does not wait on connecting.
        let pool = bb8::Pool::builder()
            .max_size(size)
            .min_idle(Some(size.min(4)))
            .connection_timeout(timeout)
            .build_unchecked(manager);
        let channel = format!("{prefix}:invalidations");
        let bus = Bus::redis(url, channel.clone())?;
        Ok(Self { pool, prefix: format!("{prefix}:"), timeout, cooldown, breaker: Arc::new(Breaker::new("redis")), bus, channel })
    }

    /// Pings Redis every cool-down until it answers, then closes the breaker.
    fn spawn_probe(&self) {
        let (pool, breaker, cooldown, timeout) = (self.pool.clone(), self.breaker.clone(), self.cooldown, self.timeout);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(cooldown).await;
                if ping(&pool, timeout).await.is_ok() {
                    breaker.close();
                    return;
                }
            }
        });
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs one command on a pooled connection, within the timeout and
    /// through the breaker.
    async fn call<T>(
        &self,
        f: impl AsyncFnOnce(&mut redis::aio::MultiplexedConnection) -> redis::RedisResult<T>,
    ) -> Result<T, CacheError> {
        let started = std::time::Instant::now();
        if self.breaker.is_open() {
            crate::metrics::redis_call("skipped", started.elapsed());
            return Err(CacheError::Unavailable("Redis was unreachable moments ago; not waiting on it".into()));
        }
        let attempt = async {
            let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
            f(&mut *conn).await.map_err(|e| e.to_string())
        };
        let outcome = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        };
        crate::metrics::redis_call(if outcome.is_ok() { "ok" } else { "error" }, started.elapsed());
        outcome.map_err(|e| {
            if self.breaker.trip(&e) {
                self.spawn_probe();
            }
            CacheError::Unavailable(e)
        })
    }
}

#[async_trait::async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let key = self.key(key);
        self.call(async |c| c.get(key).await).instrument(redis_command("GET")).await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let key = self.key(key);
        self.call(async |c| c.pset_ex(key, value, millis(ttl)).await).instrument(redis_command("PSETEX")).await
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        let key = self.key(key);
        self.call(async |c| c.del(key).await).instrument(redis_command("DEL")).await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        self.call(async |c| redis::cmd("MGET").arg(&keys).query_async(c).await).instrument(redis_command("MGET")).await
    }

    async fn incr(&self, key: &str, window: Duration) -> Result<u64, CacheError> {
        let key = self.key(key);
        // One round trip; NX keeps the window fixed from the first count.
        let (count, _): (u64, i64) = self
            .call(async |c| {
                redis::pipe().atomic().incr(&key, 1u64).cmd("PEXPIRE").arg(&key).arg(millis(window)).arg("NX").query_async(c).await
            })
            .instrument(redis_command("INCR"))
            .await?;
        Ok(count)
    }

    async fn reserve(&self, counters: &[(String, u64)], window: Duration) -> Result<Result<Vec<u64>, usize>, CacheError> {
        let script = redis::Script::new(RESERVE);
        let mut invocation = script.prepare_invoke();
        invocation.arg(millis(window));
        for (key, limit) in counters {
            invocation.key(self.key(key)).arg(*limit);
        }
        let reply: Vec<u64> = self.call(async |c| invocation.invoke_async(c).await).instrument(redis_command("EVALSHA")).await?;
        match reply.split_first() {
            Some((0, counts)) => Ok(Ok(counts.to_vec())),
            Some((i, _)) => Ok(Err(usize::try_from(*i).unwrap_or(1).saturating_sub(1))),
            None => Err(CacheError::Unavailable("an empty reply to a reservation".into())),
        }
    }

    async fn raise(&self, key: &str, value: u64, ttl: Duration) -> Result<(), CacheError> {
        static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RAISE));
        let mut invocation = SCRIPT.prepare_invoke();
        invocation.key(self.key(key)).arg(value).arg(millis(ttl));
        let _: i64 = self.call(async |c| invocation.invoke_async(c).await).instrument(redis_command("EVALSHA")).await?;
        Ok(())
    }

    async fn release(&self, keys: &[String]) -> Result<(), CacheError> {
        let script = redis::Script::new(RELEASE);
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(self.key(key));
        }
        let _: i64 = self.call(async |c| invocation.invoke_async(c).await).instrument(redis_command("EVALSHA")).await?;
        Ok(())
    }

    async fn take(&self, buckets: &[gcra::Bucket]) -> Result<gcra::Taken, CacheError> {
        // Hashed once: the script then travels as its SHA-1 (EVALSHA), and
        // is loaded again only when Redis answers that it lost it.
        static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(gcra::SCRIPT));
        let mut invocation = SCRIPT.prepare_invoke();
        for b in buckets {
            invocation.key(self.key(&b.key)).arg(b.interval_us).arg(b.capacity_us).arg(b.cost);
        }
        let reply: Vec<i64> = self.call(async |c| invocation.invoke_async(c).await).instrument(redis_command("EVALSHA")).await?;
        gcra::Taken::from_reply(&reply, buckets.len())
            .ok_or_else(|| CacheError::Unavailable(format!("an unexpected reply to a rate-limit step: {reply:?}")))
    }

    async fn ping(&self) -> Result<(), CacheError> {
        // Readiness probes Redis even while the breaker is open: it is how an
        // operator sees that it is back.
        ping(&self.pool, self.timeout).await
    }

    fn backend_name(&self) -> &'static str {
        "redis"
    }

    fn bus(&self) -> &Bus {
        &self.bus
    }

    async fn publish(&self, message: &[u8]) {
        // This replica's listeners first: its own subscribers and copies
        // never wait on Redis, nor miss what Redis could not carry.
        self.bus.deliver(message);
        let channel = self.channel.clone();
        let framed = self.bus.framed(message);
        let sent = self.call(async |c| redis::cmd("PUBLISH").arg(channel).arg(&framed).query_async::<i64>(c).await).instrument(redis_command("PUBLISH")).await;
        if let Err(e) = sent {
            tracing::warn!(
                error = %e,
                "a bus message (an invalidation or live event) reached only this replica; the others catch up on invalidations by themselves, their live subscribers miss the event"
            );
        }
    }

    fn is_degraded(&self) -> bool {
        self.breaker.is_open()
    }
}
