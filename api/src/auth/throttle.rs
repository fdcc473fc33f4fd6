//! Slowing repeated failed sign-ins without letting a stranger lock a user
//! out. Three counters per window:
//! - one account from one address: past the limit that pair must wait, but
//!   the real user, from their own address, is unaffected;
//! - one address, any accounts: past the limit it must wait (stuffing);
//! - one account from anywhere: past the limit each attempt waits longer
//!   (1 s, 2 s, 4 s, ... at most 10 s), never a refusal, so a distributed
//!   guess is slowed and the owner can still sign in.
//!
//! An attempt reserves its place on all three counters, in one atomic step,
//! before the password is checked: of N concurrent attempts at most the
//! limit get checked. A right password gives its reservation back; a wrong
//! one keeps it, as a failure. Every attempt is counted twice: in this
//! process, and in the shared cache for all replicas. The process's count
//! alone decides when the shared cache cannot answer, so no outage (nor a
//! slow answer) ever lets a replica check more than the limit.
//!
//! Unknown accounts count the same, so the counters reveal nothing.

use std::{net::IpAddr, sync::Arc, time::Duration};

use sha2::{Digest as _, Sha256};

use crate::{
    cache::{self, Cache, MemoryCache},
    config::AuthSettings,
    error::{ApiError, ApiResult},
};

#[derive(Debug, Clone)]
pub struct LoginThrottle {
    cache: Arc<dyn Cache>,
    /// This process's counts, always kept; alone they decide while the
    /// shared cache cannot answer.
    local: Arc<MemoryCache>,
    per_pair: u64,
    per_address: u64,
    per_account: u64,
    window: Duration,
}

/// The longest an attempt on a much-guessed account is made to wait.
const MAX_DELAY: Duration = Duration::from_secs(10);

fn digest(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..16])
}

/// The counters of one attempt: `[pair, account, address?]`.
fn keys(account: &str, ip: Option<IpAddr>) -> Vec<String> {
    let ip = ip.map(|ip| ip.to_string());
    let mut keys = vec![
        cache::platform_key("login-fail-pair", &digest(&format!("{account}|{}", ip.as_deref().unwrap_or("-")))),
        cache::platform_key("login-fail-account", &digest(account)),
    ];
    keys.extend(ip.map(|ip| cache::platform_key("login-fail-ip", &ip)));
    keys
}

/// A reserved attempt: hand it back with [`LoginThrottle::succeeded`] when
/// the password was right; drop it when it was wrong.
#[derive(Debug)]
#[must_use = "a right password gives the reservation back with `succeeded`"]
pub struct Attempt {
    keys: Vec<String>,
    /// Whether the shared cache holds a reservation too.
    shared: bool,
}

impl LoginThrottle {
    pub fn new(cache: Arc<dyn Cache>, s: &AuthSettings) -> Self {
        Self {
            cache,
            local: Arc::new(MemoryCache::new()),
            per_pair: s.login_failures_per_account_and_address.into(),
            per_address: s.login_failures_per_address.into(),
            per_account: s.login_failures_per_account.into(),
            window: Duration::from_secs(s.login_window_secs),
        }
    }

    /// Before checking a password: reserve a place, or be refused; an
    /// account guessed at too often from everywhere waits first.
    pub async fn reserve(&self, account: &str, ip: Option<IpAddr>) -> ApiResult<Attempt> {
        let keys = keys(account, ip);
        let limits = [self.per_pair, u64::MAX, self.per_address];
        let counters: Vec<(String, u64)> = keys.iter().cloned().zip(limits).collect();
        let retry_after = self.window.as_secs();
        let refused = |i: usize| {
            crate::metrics::rate_limited("sign_in_failures");
            match i {
                0 => ApiError::RateLimited { retry_after, why: "too many failed sign-ins for this account from this address" },
                _ => ApiError::RateLimited { retry_after, why: "too many failed sign-ins from this address" },
            }
        };
        let local = self.local.reserve(&counters, self.window).await.map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?;
        let mut counts = local.map_err(refused)?;
        let shared = match self.cache.reserve(&counters, self.window).await {
            Ok(Ok(shared_counts)) => {
                counts = shared_counts;
                true
            }
            Ok(Err(i)) => {
                self.give_back(&keys, false).await;
                return Err(refused(i));
            }
            Err(e) => {
                tracing::warn!(error = %e, "sign-in throttle counts in this process only");
                false
            }
        };
        let on_account = counts.get(1).copied().unwrap_or(0);
        if on_account > self.per_account {
            let over = u32::try_from(on_account - self.per_account - 1).unwrap_or(u32::MAX).min(8);
            tokio::time::sleep(Duration::from_secs(1u64 << over).min(MAX_DELAY)).await;
        }
        Ok(Attempt { keys, shared })
    }

    /// This process's counters, and the shared ones when `shared`.
    fn stores(&self, shared: bool) -> Vec<&dyn Cache> {
        let mut stores: Vec<&dyn Cache> = vec![self.local.as_ref()];
        if shared {
            stores.push(self.cache.as_ref());
        }
        stores
    }

    /// Releases a reservation: here, and in the shared cache when `shared`.
    async fn give_back(&self, keys: &[String], shared: bool) {
        for store in self.stores(shared) {
            if let Err(e) = store.release(keys).await {
                tracing::warn!(error = %e, "could not give back a sign-in reservation");
            }
        }
    }

    /// The password was right: the attempt is not a failure, and the pair
    /// starts afresh (the address and account totals keep earlier failures).
    pub async fn succeeded(&self, attempt: Attempt) {
        self.give_back(&attempt.keys[1..], attempt.shared).await;
        for store in self.stores(attempt.shared) {
            if let Err(e) = store.delete(&attempt.keys[0]).await {
                tracing::warn!(error = %e, "could not clear a sign-in counter");
            }
        }
    }
}
