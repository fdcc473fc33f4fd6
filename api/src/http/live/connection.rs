//! A connection as the hub sees it, and its places in the per-user and
//! per-agency counts.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Inner;
use crate::{auth::Principal, store::sessions::ClientInfo, tenancy::ResolvedTenant};

/// One accepted connection, as the hub sees it.
pub struct Connection {
    pub id: u64,
    pub resolved: ResolvedTenant,
    pub principal: Principal,
    /// Since when its access holds: its token's issue, or (an API key) the
    /// connection's start.
    pub since_us: i64,
    /// An API key connection's key, read again every few seconds.
    pub api_key: Option<String>,
    pub client: ClientInfo,
    pub request_id: String,
    pub(super) outgoing: Outgoing,
    /// Set once, with why, when the connection must close.
    pub(super) closing: Mutex<Option<(u16, String)>>,
    pub closed: CancellationToken,
}

impl Connection {
    /// Queues `message` without waiting; a connection too far behind is
    /// closed instead (1013: the client may come back later).
    pub fn send(&self, message: String) {
        if !self.outgoing.push(message) {
            self.close(1013, "Try again later: this connection reads its events too slowly");
        }
    }

    /// The next message to write, once there is one.
    pub async fn next_outgoing(&self) -> String {
        self.outgoing.next().await
    }

    pub fn close(&self, code: u16, reason: impl Into<String>) {
        let mut closing = self.closing.lock().unwrap_or_else(PoisonError::into_inner);
        if closing.is_none() {
            *closing = Some((code, reason.into()));
        }
        self.closed.cancel();
    }

    /// Its agency (every accepted connection has one).
    pub fn agency(&self) -> Uuid {
        self.resolved.tenant.as_ref().map(|t| t.id).unwrap_or_default()
    }

    pub fn close_reason(&self) -> Option<(u16, String)> {
        self.closing.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The text messages waiting for a socket, at most `max`. Unlike a
/// channel it allocates nothing while empty: an idle socket's queue is a
/// few words.
pub(super) struct Outgoing {
    queue: Mutex<VecDeque<String>>,
    ready: Notify,
    max: usize,
}

impl Outgoing {
    pub(super) fn new(max: usize) -> Self {
        Self { queue: Mutex::default(), ready: Notify::new(), max }
    }

    /// Queues `message`; `false` when the queue is full.
    fn push(&self, message: String) -> bool {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.len() >= self.max {
            return false;
        }
        queue.push_back(message);
        drop(queue);
        // Kept as a permit if the writer is not waiting yet.
        self.ready.notify_one();
        true
    }

    async fn next(&self) -> String {
        loop {
            if let Some(m) = self.queue.lock().unwrap_or_else(PoisonError::into_inner).pop_front() {
                return m;
            }
            self.ready.notified().await;
        }
    }
}

/// Open connections, by user (or key) and by agency.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) by_subject: HashMap<Uuid, usize>,
    pub(super) by_agency: HashMap<Uuid, usize>,
}

/// Holds a connection's places in [`Counts`] until dropped.
pub struct Slot {
    pub(super) hub: Arc<Inner>,
    pub(super) conn: Arc<Connection>,
    pub(super) subject: Option<Uuid>,
    pub(super) agency: Uuid,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.hub.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let Counts { by_subject, by_agency } = &mut *counts;
        for (map, key) in [(by_agency, Some(self.agency)), (by_subject, self.subject)] {
            if let Some(k) = key
                && let Some(n) = map.get_mut(&k)
            {
                *n -= 1;
                if *n == 0 {
                    map.remove(&k);
                }
            }
        }
        drop(counts);
        self.hub.connections.write().unwrap_or_else(PoisonError::into_inner).remove(&self.conn.id);
        crate::metrics::websocket_connections(-1.0);
        self.hub.forget_connection(&self.conn);
    }
}

