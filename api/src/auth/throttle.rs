//! Slowing repeated failed sign-ins without letting a stranger lock a user
//! out. Three counters per window:
//! - one account from one address: past the limit that pair must wait, but
//!   the real user, from their own address, is unaffected;
//! - one address, any accounts: past the limit it must wait (stuffing);
//! - one account from anywhere: past the limit each attempt costs a second
//!   more, never a refusal, so a distributed guess is slowed and the owner can
//!   still sign in.
//!
//! Unknown accounts count the same, so the counters reveal nothing.

use std::{net::IpAddr, sync::Arc, time::Duration};

use sha2::{Digest as _, Sha256};

use crate::{
    cache::{self, Cache},
    config::AuthSettings,
    error::{ApiError, ApiResult},
};

#[derive(Debug, Clone)]
pub struct LoginThrottle {
    cache: Arc<dyn Cache>,
    per_pair: u64,
    per_address: u64,
    per_account: u64,
    window: Duration,
}

fn digest(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..16])
}

struct Keys {
    pair: String,
    address: Option<String>,
    account: String,
}

fn keys(account: &str, ip: Option<IpAddr>) -> Keys {
    let ip = ip.map(|ip| ip.to_string());
    Keys {
        pair: cache::platform_key("login-fail-pair", &digest(&format!("{account}|{}", ip.as_deref().unwrap_or("-")))),
        address: ip.map(|ip| cache::platform_key("login-fail-ip", &ip)),
        account: cache::platform_key("login-fail-account", &digest(account)),
    }
}

fn count(v: Option<&Option<Vec<u8>>>) -> u64 {
    v.and_then(|v| v.as_deref()).and_then(|b| std::str::from_utf8(b).ok()?.parse().ok()).unwrap_or(0)
}

impl LoginThrottle {
    pub fn new(cache: Arc<dyn Cache>, s: &AuthSettings) -> Self {
        Self {
            cache,
            per_pair: s.login_failures_per_account_and_address.into(),
            per_address: s.login_failures_per_address.into(),
            per_account: s.login_failures_per_account.into(),
            window: Duration::from_secs(s.login_window_secs),
        }
    }

    /// Before checking a password: refuse, slow down, or let through. A cache
    /// that is down lets through (logged): sign-in matters more than pacing.
    pub async fn before_attempt(&self, account: &str, ip: Option<IpAddr>) -> ApiResult<()> {
        let k = keys(account, ip);
        let mut wanted = vec![k.pair, k.account];
        wanted.extend(k.address);
        let counts = match self.cache.get_many(&wanted).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "login throttle unavailable");
                return Ok(());
            }
        };
        let retry_after = self.window.as_secs();
        if count(counts.first()) >= self.per_pair {
            return Err(ApiError::RateLimited { retry_after, why: "too many failed sign-ins for this account from this address" });
        }
        if count(counts.get(2)) >= self.per_address {
            return Err(ApiError::RateLimited { retry_after, why: "too many failed sign-ins from this address" });
        }
        if count(counts.get(1)) >= self.per_account {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(())
    }

    pub async fn failed(&self, account: &str, ip: Option<IpAddr>) {
        let k = keys(account, ip);
        for key in [Some(k.pair), Some(k.account), k.address].into_iter().flatten() {
            if let Err(e) = self.cache.incr(&key, self.window).await {
                tracing::warn!(error = %e, "could not count a failed sign-in");
            }
        }
    }

    /// A success clears the pair (not the address or account totals).
    pub async fn succeeded(&self, account: &str, ip: Option<IpAddr>) {
        if let Err(e) = self.cache.delete(&keys(account, ip).pair).await {
            tracing::warn!(error = %e, "could not clear a sign-in counter");
        }
    }
}
