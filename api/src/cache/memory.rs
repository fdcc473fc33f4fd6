//! The in-process cache of the embedded default: one process, no Redis.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::{Cache, CacheError, gcra};

/// Past this many entries, expired ones are swept before inserting.
const SWEEP_AT: usize = 10_000;

#[derive(Debug)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
    bus: super::bus::Bus,
    /// The clock of rate-limit buckets: microseconds since this instant.
    epoch: Instant,
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self { entries: Mutex::default(), bus: super::bus::Bus::local(), epoch: Instant::now() }
    }
}

impl MemoryCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Vec<u8>, Instant)>> {
        // A panic while holding the lock cannot leave a half-written entry
        // (inserts and removes are single calls), so a poisoned map is fine.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some((value, expires)) if *expires > Instant::now() => Ok(Some(value.clone())),
            Some(_) => {
                entries.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let mut entries = self.lock();
        let now = Instant::now();
        if entries.len() >= SWEEP_AT {
            entries.retain(|_, (_, expires)| *expires > now);
        }
        entries.insert(key.to_owned(), (value.to_vec(), now + ttl));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.lock().remove(key);
        Ok(())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        let entries = self.lock();
        let now = Instant::now();
        Ok(keys
            .iter()
            .map(|k| entries.get(k).filter(|(_, exp)| *exp > now).map(|(v, _)| v.clone()))
            .collect())
    }

    async fn incr(&self, key: &str, window: Duration) -> Result<u64, CacheError> {
        let mut entries = self.lock();
        let now = Instant::now();
        let (count, expires) = match entries.get(key) {
            Some((v, exp)) if *exp > now => (parse_count(v) + 1, *exp),
            _ => (1, now + window),
        };
        entries.insert(key.to_owned(), (count.to_string().into_bytes(), expires));
        Ok(count)
    }

    async fn reserve(&self, counters: &[(String, u64)], window: Duration) -> Result<Result<Vec<u64>, usize>, CacheError> {
        let mut entries = self.lock();
        let now = Instant::now();
        let live = |entries: &HashMap<String, (Vec<u8>, Instant)>, key: &str| match entries.get(key) {
            Some((v, exp)) if *exp > now => Some((parse_count(v), *exp)),
            _ => None,
        };
        for (i, (key, limit)) in counters.iter().enumerate() {
            if live(&entries, key).map_or(0, |(n, _)| n) >= *limit {
                return Ok(Err(i));
            }
        }
        let mut counts = Vec::with_capacity(counters.len());
        for (key, _) in counters {
            let (n, expires) = live(&entries, key).unwrap_or((0, now + window));
            entries.insert(key.clone(), ((n + 1).to_string().into_bytes(), expires));
            counts.push(n + 1);
        }
        Ok(Ok(counts))
    }

    async fn raise(&self, key: &str, value: u64, ttl: Duration) -> Result<(), CacheError> {
        let mut entries = self.lock();
        let now = Instant::now();
        let current = entries.get(key).filter(|(_, exp)| *exp > now).map_or(0, |(v, _)| parse_count(v));
        entries.insert(key.to_owned(), (current.max(value).to_string().into_bytes(), now + ttl));
        Ok(())
    }

    async fn release(&self, keys: &[String]) -> Result<(), CacheError> {
        let mut entries = self.lock();
        let now = Instant::now();
        for key in keys {
            if let Some((v, exp)) = entries.get_mut(key)
                && *exp > now
            {
                *v = parse_count(v).saturating_sub(1).to_string().into_bytes();
            }
        }
        Ok(())
    }

    async fn take(&self, buckets: &[gcra::Bucket]) -> Result<gcra::Taken, CacheError> {
        let mut entries = self.lock();
        let instant = Instant::now();
        let now = u64::try_from(instant.duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX);
        let stored: Vec<Option<u64>> = buckets
            .iter()
            .map(|b| entries.get(&b.key).filter(|(_, exp)| *exp > instant).map(|(v, _)| parse_count(v)))
            .collect();
        let (taken, tats) = gcra::take(buckets, &stored, now);
        if taken.allowed {
            if entries.len() >= SWEEP_AT {
                entries.retain(|_, (_, expires)| *expires > instant);
            }
            for ((b, tat), ahead) in buckets.iter().zip(tats).zip(&taken.ahead_us) {
                entries.insert(b.key.clone(), (tat.to_string().into_bytes(), instant + Duration::from_micros(*ahead)));
            }
        }
        Ok(taken)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    fn backend_name(&self) -> &'static str {
        "in-process"
    }

    fn bus(&self) -> &super::bus::Bus {
        &self.bus
    }

    async fn publish(&self, message: &[u8]) {
        self.bus.deliver(message);
    }
}

fn parse_count(v: &[u8]) -> u64 {
    std::str::from_utf8(v).ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}
