//! Ending access at once, on every replica, whatever happens to Redis.
//! Access tokens are short-lived but not revocable by themselves, so each
//! request is checked against the ended access: a per-user cut (tokens
//! issued up to then are refused: logout everywhere, password change,
//! deactivation), a per-tenant cut (the tenant was deactivated), a
//! per-session mark (logout, session revoked, refresh reuse) and a
//! per-administrator cut.
//!
//! The record is the `revocations` table, written in the transaction of the
//! change. Every replica holds the live rows in memory, reloaded every
//! second, and checks requests against that copy without any I/O; the
//! replica that ends access adds it to its copy at once. The shared cache
//! carries the same markers so that the other replicas refuse the token on
//! the very next request rather than after their next reload; it speeds the
//! check up but is never the only record: a flushed, restarted or
//! unreachable Redis revives nothing.
//!
//! Each ended access is also published on the cache's bus (Redis pub/sub),
//! and every replica adds it to its copy on receipt. While a replica's
//! subscription has been live since before its last reload began, its copy
//! holds everything: the check then costs no round trip at all. Otherwise
//! (the subscription dropped, or came back and the copy has not caught up)
//! the shared markers are read as before.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock, Weak},
    time::{Duration, Instant},
};

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::principal::{AdminPrincipal, UserPrincipal};
use crate::{
    cache::{self, Cache},
    error::{ApiError, ApiResult},
    store::{
        Database,
        revocations::{self, Kind, Revocation},
    },
};

/// How often every replica reloads the durable list.
const RELOAD_EVERY: Duration = Duration::from_secs(1);
/// How often expired rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(300);
/// Revocations made here are kept in the local copy this long even when a
/// reload does not show them yet (their transaction may still be
/// committing).
const KEEP_LOCAL: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct Known {
    users: HashMap<(Uuid, Uuid), i64>,
    tenants: HashMap<Uuid, i64>,
    sessions: HashSet<(Uuid, Uuid)>,
    admins: HashMap<Uuid, i64>,
}

impl Known {
    fn add(&mut self, r: &Revocation) {
        let tenant = r.tenant.unwrap_or_default();
        let later = |old: Option<i64>| old.map_or(r.cut_at_us, |o| o.max(r.cut_at_us));
        match r.kind {
            Kind::User => {
                let v = later(self.users.get(&(tenant, r.subject)).copied());
                self.users.insert((tenant, r.subject), v);
            }
            Kind::Tenant => {
                let v = later(self.tenants.get(&r.subject).copied());
                self.tenants.insert(r.subject, v);
            }
            Kind::Session => {
                self.sessions.insert((tenant, r.subject));
            }
            Kind::Admin => {
                let v = later(self.admins.get(&r.subject).copied());
                self.admins.insert(r.subject, v);
            }
        }
    }

    fn refuses_user(&self, user: &UserPrincipal, issued_us: i64) -> bool {
        self.users.get(&(user.tenant_id, user.user_id)).is_some_and(|cut| issued_us < *cut)
            || self.tenants.get(&user.tenant_id).is_some_and(|cut| issued_us < *cut)
            || self.sessions.contains(&(user.tenant_id, user.session_id))
    }
}

#[derive(Debug)]
struct Inner {
    known: RwLock<Known>,
    /// Made on this replica or heard of lately, with when: kept through
    /// reloads until the durable list surely shows them.
    local: RwLock<Vec<(Instant, Revocation)>>,
    /// When the last successful reload began.
    reloaded_from: RwLock<Option<Instant>>,
}

/// The bus message of an ended access: `revocation {kind} {tenant|-}
/// {subject} {cut_at_us}`.
fn encode(r: &Revocation) -> String {
    let tenant = r.tenant.map_or_else(|| "-".to_owned(), |t| t.to_string());
    format!("revocation {} {tenant} {} {}", r.kind.as_str(), r.subject, r.cut_at_us)
}

fn decode(message: &[u8]) -> Option<Revocation> {
    let text = std::str::from_utf8(message).ok()?.strip_prefix("revocation ")?;
    let mut parts = text.split(' ');
    let kind = Kind::parse(parts.next()?)?;
    let tenant = match parts.next()? {
        "-" => None,
        t => Some(Uuid::try_parse(t).ok()?),
    };
    let subject = Uuid::try_parse(parts.next()?).ok()?;
    let cut_at_us = parts.next()?.parse().ok()?;
    Some(Revocation { kind, tenant, subject, cut_at_us })
}

#[derive(Debug, Clone)]
pub struct Revocations {
    cache: Arc<dyn Cache>,
    /// How long a marker or row must live: as long as a token can.
    ttl: Duration,
    inner: Arc<Inner>,
}

fn marker_key(r: &Revocation) -> String {
    let tenant = r.tenant.unwrap_or_default();
    match r.kind {
        Kind::User => cache::tenant_key(tenant, "auth-user-cut", &r.subject.to_string()),
        Kind::Session => cache::tenant_key(tenant, "auth-session-revoked", &r.subject.to_string()),
        Kind::Tenant => cache::tenant_key(r.subject, "auth-tenant-cut", "all"),
        Kind::Admin => cache::platform_key("auth-admin-cut", &r.subject.to_string()),
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // Writers replace whole values: a poisoned lock holds a consistent one.
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Revocations {
    /// `token_ttl`: the access-token lifetime; records outlive it a little.
    pub fn new(cache: Arc<dyn Cache>, token_ttl: Duration) -> Self {
        let inner = Arc::new(Inner {
            known: RwLock::new(Known::default()),
            local: RwLock::new(Vec::new()),
            reloaded_from: RwLock::new(None),
        });
        let heard = Arc::downgrade(&inner);
        cache.bus().listen(move |h| {
            if let (cache::bus::Heard::Message(m), Some(inner)) = (h, heard.upgrade())
                && let Some(r) = decode(m)
            {
                remember(&inner, r);
            }
        });
        Self { cache, ttl: token_ttl + Duration::from_secs(60), inner }
    }

    /// Whether this replica's copy holds every ended access: its bus has
    /// been live since before its last reload began.
    fn copy_is_complete(&self) -> bool {
        let live_since = self.cache.bus().live_since();
        let reloaded_from = *read(&self.inner.reloaded_from);
        matches!((live_since, reloaded_from), (Some(live), Some(reload)) if live <= reload)
    }

    /// Loads the durable list, then keeps reloading it in the background
    /// for as long as this value (or a clone) lives.
    pub async fn start(&self, db: Database) -> anyhow::Result<()> {
        reload(&self.inner, &db).await?;
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_prune = Instant::now();
            let mut failing = false;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                match reload(&inner, &db).await {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("the revocation list reloads again");
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = ?e, "cannot reload the revocation list; keeping the last copy");
                    }
                    Err(_) => {}
                }
                if last_prune.elapsed() >= PRUNE_EVERY {
                    last_prune = Instant::now();
                    if let Err(e) = revocations::prune(db.platform()).await {
                        tracing::warn!(error = ?e, "cannot prune expired revocations");
                    }
                }
            }
        });
        Ok(())
    }

    /// Records `r` in `conn`'s transaction, in this replica's copy, and as a
    /// marker in the shared cache for the other replicas. A cache that is
    /// down only delays the others until their next reload.
    async fn end(&self, conn: &impl ConnectionTrait, r: Revocation) -> ApiResult<()> {
        let expires_at = chrono::Utc::now() + chrono::Duration::from_std(self.ttl).map_err(ApiError::internal)?;
        revocations::record(conn, r, expires_at).await?;
        remember(&self.inner, r);
        if let Err(e) = self.cache.set(&marker_key(&r), r.cut_at_us.to_string().as_bytes(), self.ttl).await {
            tracing::warn!(error = %e, "revocation marker not shared; other replicas see it at their next reload");
        }
        self.cache.publish(encode(&r).as_bytes()).await;
        Ok(())
    }

    /// Refuses every access token of `user` issued until now.
    pub async fn cut_user(&self, conn: &impl ConnectionTrait, tenant: Uuid, user: Uuid) -> ApiResult<()> {
        self.end(conn, Revocation { kind: Kind::User, tenant: Some(tenant), subject: user, cut_at_us: now_us() }).await
    }

    /// Refuses every access token of every user of `tenant` issued until now
    /// (the tenant was deactivated: reactivating it must not revive them).
    pub async fn cut_tenant(&self, conn: &impl ConnectionTrait, tenant: Uuid) -> ApiResult<()> {
        self.end(conn, Revocation { kind: Kind::Tenant, tenant: Some(tenant), subject: tenant, cut_at_us: now_us() }).await
    }

    pub async fn revoke_session(&self, conn: &impl ConnectionTrait, tenant: Uuid, session: Uuid) -> ApiResult<()> {
        self.end(conn, Revocation { kind: Kind::Session, tenant: Some(tenant), subject: session, cut_at_us: now_us() }).await
    }

    pub async fn cut_admin(&self, conn: &impl ConnectionTrait, admin: Uuid) -> ApiResult<()> {
        self.end(conn, Revocation { kind: Kind::Admin, tenant: None, subject: admin, cut_at_us: now_us() }).await
    }

    /// The local copy first (no I/O); then the shared markers, one round
    /// trip, unless the cache is known to be down.
    pub async fn check_user(&self, user: &UserPrincipal, issued_us: i64) -> ApiResult<()> {
        if read(&self.inner.known).refuses_user(user, issued_us) {
            return Err(ApiError::Unauthenticated);
        }
        if self.copy_is_complete() {
            return Ok(());
        }
        let markers = [
            Revocation { kind: Kind::User, tenant: Some(user.tenant_id), subject: user.user_id, cut_at_us: 0 },
            Revocation { kind: Kind::Session, tenant: Some(user.tenant_id), subject: user.session_id, cut_at_us: 0 },
            Revocation { kind: Kind::Tenant, tenant: Some(user.tenant_id), subject: user.tenant_id, cut_at_us: 0 },
        ];
        let found = self.shared_markers(&markers).await;
        if cut_applies(found.first(), issued_us) || found.get(1).is_some_and(Option::is_some) || cut_applies(found.get(2), issued_us) {
            return Err(ApiError::Unauthenticated);
        }
        Ok(())
    }

    pub async fn check_admin(&self, admin: &AdminPrincipal, issued_us: i64) -> ApiResult<()> {
        if read(&self.inner.known).admins.get(&admin.admin_id).is_some_and(|cut| issued_us < *cut) {
            return Err(ApiError::Unauthenticated);
        }
        if self.copy_is_complete() {
            return Ok(());
        }
        let marker = Revocation { kind: Kind::Admin, tenant: None, subject: admin.admin_id, cut_at_us: 0 };
        if cut_applies(self.shared_markers(&[marker]).await.first(), issued_us) {
            return Err(ApiError::Unauthenticated);
        }
        Ok(())
    }

    /// Whether access that began at `since_us` (a token's issue, or an API
    /// key connection's start) has ended, by the local copy alone (no I/O;
    /// it reloads every second): for connections that outlive requests.
    pub fn ended_locally(&self, principal: &super::Principal, since_us: i64) -> bool {
        let known = read(&self.inner.known);
        match principal {
            super::Principal::User(u) => known.refuses_user(u, since_us),
            super::Principal::ApiKey(k) => known.tenants.get(&k.tenant_id).is_some_and(|cut| since_us < *cut),
            super::Principal::PlatformAdmin(a) => known.admins.get(&a.admin_id).is_some_and(|cut| since_us < *cut),
            super::Principal::Anonymous => false,
        }
    }

    /// The shared markers of `which`, or none when the cache cannot answer:
    /// the local copy has already been checked.
    async fn shared_markers(&self, which: &[Revocation]) -> Vec<Option<Vec<u8>>> {
        if self.cache.is_degraded() {
            return Vec::new();
        }
        let keys: Vec<String> = which.iter().map(marker_key).collect();
        self.cache.get_many(&keys).await.unwrap_or_default()
    }
}

/// Replaces the local copy with the durable list, keeping what this replica
/// ended lately (its transaction may still be committing).
async fn reload(inner: &Inner, db: &Database) -> Result<(), sea_orm::DbErr> {
    let began = Instant::now();
    let rows = revocations::live(db.platform()).await?;
    let mut known = Known::default();
    for r in &rows {
        known.add(r);
    }
    // Under the lock of the recent list, as `remember` adds to both: a
    // revocation heard meanwhile is either in the list read here or added
    // to the copy after it is replaced, never lost between the two.
    let mut local = write(&inner.local);
    local.retain(|(at, _)| at.elapsed() < KEEP_LOCAL);
    for (_, r) in local.iter() {
        known.add(r);
    }
    *write(&inner.known) = known;
    drop(local);
    *write(&inner.reloaded_from) = Some(began);
    Ok(())
}

/// Adds `r` to the copy and to the recent list, atomically with respect to
/// a reload.
fn remember(inner: &Inner, r: Revocation) {
    let mut local = write(&inner.local);
    local.push((Instant::now(), r));
    write(&inner.known).add(&r);
}

/// A token issued before the cut is refused. Both instants come from the
/// same kind of clock, in microseconds; a session started right after the
/// cut (a password change) is issued after it, so it stands.
fn cut_applies(marker: Option<&Option<Vec<u8>>>, issued_us: i64) -> bool {
    marker
        .and_then(|m| m.as_deref())
        .and_then(|b| std::str::from_utf8(b).ok()?.parse::<i64>().ok())
        .is_some_and(|cut| issued_us < cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_crosses_the_bus_unchanged_and_garbage_is_ignored() {
        let tenant = Uuid::now_v7();
        for r in [
            Revocation { kind: Kind::User, tenant: Some(tenant), subject: Uuid::now_v7(), cut_at_us: 1_764_000_000_123_456 },
            Revocation { kind: Kind::Admin, tenant: None, subject: Uuid::now_v7(), cut_at_us: 7 },
        ] {
            assert_eq!(decode(encode(&r).as_bytes()), Some(r));
        }
        for garbage in ["", "revocation", "revocation user - x 1", "tenant p:x", "revocation nobody - 0190a0b0-0000-7000-8000-000000000000 1"] {
            assert_eq!(decode(garbage.as_bytes()), None, "{garbage}");
        }
    }
}
