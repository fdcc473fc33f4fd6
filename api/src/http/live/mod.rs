//! Live subscriptions on this replica: who follows what, and delivering the
//! changes the bus brings (see `events`). One task takes the bus's changes
//! in order; for each, the subscriptions of that agency whose interest
//! matches are grouped by what they would see (the same principal, document,
//! operation and variables) and each group's operation runs once, as that
//! principal, in a short transaction of its own with fresh dataloaders (the
//! pipeline's own steps); the answer goes to every socket of the group
//! without waiting on any of them. Another task closes, every second, the
//! sockets whose access has ended (see `ws`), and those of agencies whose
//! events this replica missed (its backlog overflowed, a change waited past
//! `MAX_LAG`, or its bus subscription broke): delivery is at most once, and
//! a client told so refetches.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use tokio::sync::mpsc;
use uuid::Uuid;

mod connection;
mod sub;

pub use connection::{Connection, Slot};
pub use sub::{Operation, Sub};
use connection::Counts;

use super::pipeline;
use crate::{
    auth::{
        Principal,
        authenticate::{Credentials, authenticate_access},
    },
    cache::bus::Heard,
    config::SubscriptionSettings,
    events::{self, Change},
    graphql::{
        AppSchema,
        subscription::Delivered,
    },
    request::RequestContext,
    state::AppState,
    store::sessions::ClientInfo,
    tenancy::ResolvedTenant,
};

/// Changes waiting for delivery; past this the bus's are dropped, and
/// their agencies' sockets closed, rather than held without bound.
const BACKLOG: usize = 10_000;
/// A change waiting longer than this is not delivered: its agency's
/// sockets are closed (1013, refetch) rather than shown a stale view.
const MAX_LAG: Duration = Duration::from_secs(10);
/// How many groups of one change run at once.
const PARALLEL_GROUPS: usize = 8;
/// How often ended access is looked for, and API keys read again (also
/// at once for an agency's audited change, which a key revocation is).
const SWEEP_EVERY: Duration = Duration::from_secs(1);
const KEY_RECHECK_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    schema: AppSchema,
    state: AppState,
    settings: SubscriptionSettings,
    /// Each agency's subscriptions.
    feeds: RwLock<HashMap<Uuid, Vec<Arc<Sub>>>>,
    connections: RwLock<HashMap<u64, Arc<Connection>>>,
    counts: Mutex<Counts>,
    next_id: AtomicU64,
    /// Events this replica could not deliver: the agencies whose changes it
    /// dropped (its backlog was full), or every agency (`None`) when the
    /// bus's subscription broke. Their sockets are closed at the next sweep
    /// (1013), so that clients connect again and refetch rather than miss a
    /// change without knowing.
    missed: Mutex<Option<HashSet<Uuid>>>,
}

impl Live {
    /// Starts listening to the bus and sweeping ended access, for as long as
    /// the returned hub lives.
    pub fn start(schema: AppSchema, state: AppState) -> Self {
        let settings = state.settings.subscriptions.clone();
        let inner = Arc::new(Inner {
            schema,
            state: state.clone(),
            settings,
            feeds: RwLock::default(),
            connections: RwLock::default(),
            counts: Mutex::default(),
            next_id: AtomicU64::new(1),
            missed: Mutex::new(Some(HashSet::new())),
        });
        let (tx, rx) = mpsc::channel::<(Instant, Vec<Change>)>(BACKLOG);
        let hub = Arc::downgrade(&inner);
        state.cache.bus().listen(move |heard| {
            let Some(hub) = hub.upgrade() else { return };
            match heard {
                Heard::Message(m) => {
                    if let Some(changes) = events::decode(m)
                        && let Err(mpsc::error::TrySendError::Full((_, changes))) = tx.try_send((Instant::now(), changes))
                    {
                        tracing::warn!("live events arrive faster than this server delivers them; closing the sockets of the agencies whose events it dropped");
                        hub.missed(changes.iter().map(|c| c.tenant));
                    }
                }
                Heard::Lost => hub.missed_all(),
            }
        });
        tokio::spawn(deliver_forever(Arc::downgrade(&inner), rx));
        tokio::spawn(sweep_forever(Arc::downgrade(&inner)));
        Self { inner }
    }

    pub fn settings(&self) -> &SubscriptionSettings {
        &self.inner.settings
    }

    pub fn state(&self) -> &AppState {
        &self.inner.state
    }

    pub fn schema(&self) -> &AppSchema {
        &self.inner.schema
    }

    /// A connection that authenticated as `principal`, holding its places in
    /// the per-user and per-agency counts, or why it may not open.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        &self,
        resolved: ResolvedTenant,
        principal: Principal,
        since_us: i64,
        api_key: Option<String>,
        client: ClientInfo,
        request_id: String,
    ) -> Result<(Arc<Connection>, Slot), String> {
        let agency = resolved.tenant.as_ref().map(|t| t.id).unwrap_or_default();
        let subject = match &principal {
            Principal::User(u) => Some(u.user_id),
            Principal::ApiKey(k) => Some(k.key_id),
            Principal::PlatformAdmin(a) => Some(a.admin_id),
            Principal::Anonymous => None,
        };
        {
            let mut counts = self.inner.counts.lock().unwrap_or_else(PoisonError::into_inner);
            let s = &self.inner.settings;
            if counts.by_agency.get(&agency).copied().unwrap_or(0) >= s.max_connections_per_agency {
                return Err(format!(
                    "Try again later: the agency has {} live connections on this server (setting subscriptions.max_connections_per_agency)",
                    s.max_connections_per_agency
                ));
            }
            if let Some(subject) = subject
                && counts.by_subject.get(&subject).copied().unwrap_or(0) >= s.max_connections_per_user
            {
                return Err(format!(
                    "Try again later: you have {} live connections on this server; close some (setting subscriptions.max_connections_per_user)",
                    s.max_connections_per_user
                ));
            }
            *counts.by_agency.entry(agency).or_default() += 1;
            if let Some(subject) = subject {
                *counts.by_subject.entry(subject).or_default() += 1;
            }
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Connection {
            id,
            resolved,
            principal,
            since_us,
            api_key,
            client,
            request_id,
            outgoing: connection::Outgoing::new(self.inner.settings.max_queued_messages),
            closing: Mutex::default(),
            closed: self.inner.state.stopping.child_token(),
        });
        self.inner.connections.write().unwrap_or_else(PoisonError::into_inner).insert(id, conn.clone());
        crate::metrics::websocket_connections(1.0);
        let slot = Slot { hub: self.inner.clone(), conn: conn.clone(), subject, agency };
        Ok((conn, slot))
    }

    /// Starts delivering to `sub`.
    pub fn follow(&self, sub: Sub) {
        let agency = sub.conn.agency();
        self.inner.feeds.write().unwrap_or_else(PoisonError::into_inner).entry(agency).or_default().push(Arc::new(sub));
        crate::metrics::subscriptions(1.0);
    }

    /// Stops delivering the connection's subscription `id`.
    pub fn unfollow(&self, conn: &Connection, id: &str) {
        self.inner.retain(conn, |s| s.id != id);
    }
}

impl Inner {
    fn forget_connection(&self, conn: &Connection) {
        self.retain(conn, |_| false);
    }

    /// Keeps, of `conn`'s subscriptions, those `keep` says.
    fn retain(&self, conn: &Connection, keep: impl Fn(&Sub) -> bool) {
        let agency = conn.agency();
        let mut feeds = self.feeds.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(subs) = feeds.get_mut(&agency) {
            let before = subs.len();
            subs.retain(|s| s.conn.id != conn.id || keep(s));
            crate::metrics::subscriptions(-((before - subs.len()) as f64));
            if subs.is_empty() {
                feeds.remove(&agency);
            }
        }
    }

    /// Runs one group's operation for `change`, and sends the answer to each
    /// of its subscribers.
    async fn deliver(&self, change: &Change, group: Vec<Arc<Sub>>) {
        let Some(first) = group.first() else { return };
        let Some(payload) = self.resolve(first, change).await else { return };
        let mut sent = 0;
        for sub in &group {
            if sub.conn.closed.is_cancelled() {
                continue;
            }
            sub.conn.send(next_message(&sub.id, &payload));
            sent += 1;
        }
        crate::metrics::subscription_messages(sent);
    }

    /// The subscription's answer to `change` as JSON, or `None` when its
    /// operation yields nothing for it.
    async fn resolve(&self, sub: &Sub, change: &Change) -> Option<String> {
        let conn = &sub.conn;
        let state = &self.state;
        let mut ctx = RequestContext::new(conn.request_id.clone(), conn.resolved.clone(), conn.client.clone(), &state.db);
        ctx.principal = conn.principal.clone();
        let ctx = Arc::new(ctx);
        let mut op = async_graphql::Request::new(sub.query.as_ref()).variables(sub.variables.clone()).data(Delivered(change.clone()));
        op.operation_name.clone_from(&sub.operation_name);
        let answer = {
            let mut stream = self.schema.execute_stream(crate::graphql::prepare(op, ctx.clone(), state.clone()));
            tokio::time::timeout(state.settings.limits.operation_timeout(), stream.next()).await
        };
        // A read: its transaction is dropped, never committed.
        if let Err(e) = pipeline::end(&ctx, state, false).await {
            tracing::warn!(error = ?e, "ending a live event's transaction");
        }
        let response = match answer {
            Ok(Some(response)) => response,
            Ok(None) => return None,
            Err(_) => {
                let limit_ms = state.settings.limits.operation_timeout_ms;
                async_graphql::Response::from_errors(vec![crate::error::ApiError::Timeout { limit_ms }.into_server_error()])
            }
        };
        serde_json::to_string(&super::graphql::body_of(&response)).ok()
    }

    /// Closes the connections whose access has ended, or whose agency's
    /// events were missed since the last sweep.
    fn sweep(&self) {
        let missed = self.missed.lock().unwrap_or_else(PoisonError::into_inner).replace(HashSet::new());
        let conns: Vec<Arc<Connection>> = self.connections.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        for conn in conns {
            if self.state.auth.revocations.ended_locally(&conn.principal, conn.since_us) {
                conn.close(4403, "Forbidden: access ended (signed out, deactivated or revoked)");
                continue;
            }
            let agency = conn.agency();
            if missed.as_ref().is_none_or(|m| m.contains(&agency)) {
                conn.close(1013, "Try again later: this server missed live events; connect again and refetch");
            }
        }
    }

    fn missed(&self, agencies: impl Iterator<Item = Uuid>) {
        if let Some(set) = self.missed.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            set.extend(agencies);
        }
    }

    fn missed_all(&self) {
        *self.missed.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Reads the API keys of key connections (of one agency, or all) again,
    /// closing those revoked or expired.
    async fn recheck_keys(&self, agency: Option<Uuid>) {
        let conns: Vec<Arc<Connection>> = self
            .connections
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|c| c.api_key.is_some() && agency.is_none_or(|a| c.agency() == a))
            .cloned()
            .collect();
        for conn in conns {
            if let Some(key) = conn.api_key.as_deref() {
                let ctx = RequestContext::new(conn.request_id.clone(), conn.resolved.clone(), conn.client.clone(), &self.state.db);
                let db = ctx.db().ok().map(|d| d.as_ref());
                let checked = authenticate_access(&self.state.auth, &conn.resolved, db, Credentials { authorization: None, api_key: Some(key) }).await;
                let _ = pipeline::end(&ctx, &self.state, false).await;
                // A dependency that cannot answer now ends nothing.
                if let Err(crate::error::ApiError::Unauthenticated) = checked {
                    conn.close(4403, "Forbidden: the API key was revoked or has expired");
                }
            }
        }
    }
}

/// `{"id":…,"type":"next","payload":…}` with the payload already written.
fn next_message(id: &str, payload: &str) -> String {
    let id = serde_json::to_string(id).unwrap_or_default();
    format!(r#"{{"id":{id},"type":"next","payload":{payload}}}"#)
}

async fn deliver_forever(hub: std::sync::Weak<Inner>, mut rx: mpsc::Receiver<(Instant, Vec<Change>)>) {
    while let Some((heard, changes)) = rx.recv().await {
        // Too far behind to be live: the agencies concerned are told to
        // refetch (their sockets close at the next sweep) instead.
        if heard.elapsed() > MAX_LAG {
            if let Some(hub) = hub.upgrade() {
                hub.missed(changes.iter().map(|c| c.tenant));
            }
            continue;
        }
        let Some(hub) = hub.upgrade() else { return };
        for change in changes {
            // An audited change may have revoked an API key: the agency's
            // key connections are checked again now, not at the next round.
            if change.topic == events::Topic::Audit {
                let hub = hub.clone();
                let tenant = change.tenant;
                tokio::spawn(async move { hub.recheck_keys(Some(tenant)).await });
            }
            let groups: Vec<Vec<Arc<Sub>>> = {
                let feeds = hub.feeds.read().unwrap_or_else(PoisonError::into_inner);
                let Some(subs) = feeds.get(&change.tenant) else { continue };
                let mut groups: HashMap<&Arc<str>, Vec<Arc<Sub>>> = HashMap::new();
                for sub in subs.iter().filter(|s| s.interest.matches(&change)) {
                    groups.entry(&sub.group).or_default().push(sub.clone());
                }
                groups.into_values().collect()
            };
            // The next change waits for this one: each subscriber gets them in order.
            futures::stream::iter(groups).for_each_concurrent(PARALLEL_GROUPS, |group| hub.deliver(&change, group)).await;
        }
    }
}

async fn sweep_forever(hub: std::sync::Weak<Inner>) {
    let mut ticks: u64 = 0;
    let keys_every = KEY_RECHECK_EVERY.as_secs() / SWEEP_EVERY.as_secs();
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let Some(hub) = hub.upgrade() else { return };
        ticks += 1;
        hub.sweep();
        if ticks.is_multiple_of(keys_every) {
            hub.recheck_keys(None).await;
        }
    }
}
