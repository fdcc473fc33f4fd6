//! Changes that live screens follow. A mutation announces each change it
//! makes to the request's [`Outbox`]; once the request's transaction has
//! committed, the HTTP layer publishes them on the cache's bus (Redis
//! pub/sub, so every replica hears them; in process on the embedded
//! default). A rolled-back request publishes nothing. An event names what
//! changed, never its contents: each subscriber's server reads the object
//! again, as that subscriber, in a transaction of its own.

use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cache::Cache;

/// What kind of object changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Topic {
    Client,
    Project,
    Document,
    /// A new audit event (for owners and admins).
    Audit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
    /// A document's new version.
    VersionAdded,
}

/// One change, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub tenant: Uuid,
    pub topic: Topic,
    pub kind: ChangeKind,
    /// The changed object (the audit event's own id for [`Topic::Audit`]).
    pub id: Uuid,
    /// The client it belongs to: itself, or a project's or document's
    /// client (a document's through its project).
    pub client: Option<Uuid>,
    /// The project it belongs to: itself, or a document's project.
    pub project: Option<Uuid>,
    /// A document's version, when one was added (1 on upload).
    pub version: Option<i32>,
    /// When it was published, after its commit (µs since the epoch).
    pub at_us: i64,
}

impl Change {
    pub fn new(tenant: Uuid, topic: Topic, kind: ChangeKind, id: Uuid) -> Self {
        Self { tenant, topic, kind, id, client: None, project: None, version: None, at_us: 0 }
    }

    #[must_use]
    pub fn client(mut self, client: Option<Uuid>) -> Self {
        self.client = client;
        self
    }

    #[must_use]
    pub fn project(mut self, project: Option<Uuid>) -> Self {
        self.project = project;
        self
    }

    #[must_use]
    pub fn version(mut self, version: i32) -> Self {
        self.version = Some(version);
        self
    }
}

/// The changes a request made, in order, until its transaction ends.
#[derive(Debug, Default)]
pub struct Outbox(Mutex<Vec<Change>>);

impl Outbox {
    pub fn push(&self, change: Change) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(change);
    }

    fn take(&self) -> Vec<Change> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

const PREFIX: &[u8] = b"events ";

/// Publishes what `outbox` holds if the request committed, and forgets it
/// either way: one bus message per request, stamped with the time now.
pub async fn after_request(cache: &dyn Cache, outbox: Option<&Outbox>, committed: bool) {
    let Some(outbox) = outbox else { return };
    let mut changes = outbox.take();
    if !committed || changes.is_empty() {
        return;
    }
    let at_us = chrono::Utc::now().timestamp_micros();
    for c in &mut changes {
        c.at_us = at_us;
    }
    cache.publish(&encode(&changes)).await;
}

fn encode(changes: &[Change]) -> Vec<u8> {
    let mut message = PREFIX.to_vec();
    // A Vec of plain values always serializes.
    serde_json::to_writer(&mut message, changes).unwrap_or_default();
    message
}

/// The changes a bus message carries; `None` for any other message.
pub fn decode(message: &[u8]) -> Option<Vec<Change>> {
    serde_json::from_slice(message.strip_prefix(PREFIX)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_carries_the_changes_and_other_messages_are_not_events() {
        let tenant = Uuid::now_v7();
        let change = Change::new(tenant, Topic::Document, ChangeKind::VersionAdded, Uuid::now_v7())
            .client(Some(Uuid::now_v7()))
            .project(Some(Uuid::now_v7()))
            .version(3);
        assert_eq!(decode(&encode(std::slice::from_ref(&change))), Some(vec![change]));
        for other in [&b"tenant p:x"[..], b"revocation user - x 1", b"events", b"events {"] {
            assert_eq!(decode(other), None);
        }
    }

    #[tokio::test]
    async fn only_a_committed_request_publishes_and_its_outbox_is_emptied_either_way() {
        let cache = crate::cache::MemoryCache::new();
        let heard = std::sync::Arc::new(Mutex::new(Vec::new()));
        let h = heard.clone();
        cache.bus().listen(move |m| {
            if let crate::cache::bus::Heard::Message(m) = m
                && let Some(c) = decode(m)
            {
                h.lock().unwrap().extend(c);
            }
        });
        let outbox = Outbox::default();
        let change = Change::new(Uuid::now_v7(), Topic::Client, ChangeKind::Created, Uuid::now_v7());
        outbox.push(change.clone());
        after_request(&cache, Some(&outbox), false).await;
        after_request(&cache, Some(&outbox), true).await;
        assert!(heard.lock().unwrap().is_empty(), "a rollback published its changes");
        outbox.push(change.clone());
        after_request(&cache, Some(&outbox), true).await;
        let heard = heard.lock().unwrap();
        assert_eq!(heard.len(), 1);
        assert_eq!(heard[0].id, change.id);
        assert!(heard[0].at_us > 0, "not stamped");
    }
}
