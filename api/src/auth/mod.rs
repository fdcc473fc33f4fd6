//! Identity and access: passwords, access tokens, refresh tokens, API keys,
//! and the `Principal` a request acts as. Nothing here trusts the client:
//! every credential is verified, scoped to one tenant, and checked against
//! revocation on every request.

pub mod api_key;
pub mod authenticate;
pub mod key_use;
pub mod keyring;
pub mod password;
pub mod principal;
pub mod revocation;
pub mod throttle;
pub mod tokens;

use std::{sync::Arc, time::Duration};

pub use principal::{Principal, Role, Scope};

use crate::{
    cache::Cache,
    config::Settings,
    store::{Database, sessions::Lifetimes},
};

/// Everything authentication needs, built once at start-up.
#[derive(Debug, Clone)]
pub struct Auth {
    pub passwords: password::Passwords,
    pub tokens: tokens::Tokens,
    pub revocations: revocation::Revocations,
    pub throttle: throttle::LoginThrottle,
    pub lifetimes: Lifetimes,
    pub key_uses: key_use::KeyUses,
    pub cache: Arc<dyn Cache>,
}

impl Auth {
    pub fn new(settings: &Settings, cache: Arc<dyn Cache>, db: Database) -> anyhow::Result<Self> {
        let a = &settings.auth;
        let keyring = keyring::Keyring::load(&settings.keyring_file(), !settings.is_production())?;
        let ttl = Duration::from_secs(a.access_token_ttl_secs);
        let secs = |s: u64| chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX));
        Ok(Self {
            passwords: password::Passwords::new(settings)?,
            tokens: tokens::Tokens::new(Arc::new(keyring), a.issuer.clone(), ttl),
            revocations: revocation::Revocations::new(cache.clone(), ttl),
            throttle: throttle::LoginThrottle::new(cache.clone(), a),
            lifetimes: Lifetimes { idle: secs(a.refresh_idle_ttl_secs), absolute: secs(a.refresh_absolute_ttl_secs) },
            key_uses: key_use::KeyUses::new(db, cache.clone()),
            cache,
        })
    }
}
