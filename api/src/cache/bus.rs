//! Invalidations every replica hears: Redis pub/sub on a shared deployment,
//! in process on the embedded default. A replica keeps a local copy of hot
//! shared state (tenant look-ups, ended access) and answers from it without
//! a round trip for as long as its subscription is live; a message may be
//! lost only while it is not, and then [`Bus::live_since`] says so and the
//! listeners hear [`Heard::Lost`], so callers fall back to asking the shared
//! cache until they have caught up again. This is Redis client-side caching
//! done at the level of our own keys. A replica hears what it publishes at
//! once, in process, whatever Redis does; Redis carries it to the others.

use std::{
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::{Duration, Instant},
};

use futures::StreamExt as _;

/// What a listener hears.
pub enum Heard<'a> {
    Message(&'a [u8]),
    /// The subscription dropped: messages may have been missed.
    Lost,
}

type Listener = Arc<dyn Fn(Heard<'_>) + Send + Sync>;

#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    listeners: RwLock<Vec<Listener>>,
    /// This replica's mark on what it publishes: it hears its own messages
    /// at once (see [`Bus::framed`]) and skips them when Redis echoes them.
    origin: String,
    /// Since when the subscription has been live without a break.
    live_since: Mutex<Option<Instant>>,
    remote: Option<Remote>,
    /// Told when the bus is dropped, so that its subscriber stops waiting.
    closed: Arc<tokio::sync::Notify>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.closed.notify_one();
    }
}

struct Remote {
    client: redis::Client,
    channel: String,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("live_since", &self.live_since()).finish_non_exhaustive()
    }
}

/// How long a (re)subscription may take before it is tried again.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY_AFTER: Duration = Duration::from_millis(500);

impl Bus {
    /// One process: every message reaches every listener at once; always live.
    pub fn local() -> Self {
        let inner = Inner {
            listeners: RwLock::default(),
            origin: origin(),
            live_since: Mutex::new(Some(Instant::now())),
            remote: None,
            closed: Arc::default(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Redis pub/sub on `channel`, subscribed in the background (and again
    /// after any break) for as long as the bus lives.
    pub fn redis(url: &str, channel: String) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let inner = Arc::new(Inner {
            listeners: RwLock::default(),
            origin: origin(),
            live_since: Mutex::new(None),
            remote: Some(Remote { client, channel }),
            closed: Arc::default(),
        });
        tokio::spawn(subscribe_forever(Arc::downgrade(&inner), inner.closed.clone()));
        Ok(Self { inner })
    }

    pub fn listen(&self, listener: impl Fn(Heard<'_>) + Send + Sync + 'static) {
        self.inner.listeners.write().unwrap_or_else(PoisonError::into_inner).push(Arc::new(listener));
    }

    /// Since when every message published has reached this replica; `None`
    /// while the subscription is down.
    pub fn live_since(&self) -> Option<Instant> {
        *self.inner.live_since.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `message` to this process's listeners: the in-process bus's
    /// publish, and a replica's own part of a Redis publish (so that what it
    /// does itself never waits on, or depends on, Redis).
    pub(super) fn deliver(&self, message: &[u8]) {
        self.inner.hear(Heard::Message(message));
    }

    /// `message` as published to Redis: marked with this replica, whose
    /// subscription skips it (it was delivered here already).
    pub(super) fn framed(&self, message: &[u8]) -> Vec<u8> {
        let mut framed = Vec::with_capacity(self.inner.origin.len() + 2 + message.len());
        framed.push(b'@');
        framed.extend_from_slice(self.inner.origin.as_bytes());
        framed.push(b' ');
        framed.extend_from_slice(message);
        framed
    }
}

fn origin() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The message a published payload carries, or `None` if this replica sent
/// it. Unframed messages (a replica of an earlier version) are taken whole.
fn from_elsewhere<'a>(origin: &str, payload: &'a [u8]) -> Option<&'a [u8]> {
    let Some(rest) = payload.strip_prefix(b"@") else { return Some(payload) };
    let (mark, message) = rest.split_at(rest.iter().position(|b| *b == b' ').unwrap_or(rest.len()));
    (mark != origin.as_bytes()).then(|| message.strip_prefix(b" ").unwrap_or(message))
}

impl Inner {
    fn hear(&self, heard: Heard<'_>) {
        let listeners: Vec<Listener> = self.listeners.read().unwrap_or_else(PoisonError::into_inner).clone();
        for listener in &listeners {
            listener(match heard {
                Heard::Message(m) => Heard::Message(m),
                Heard::Lost => Heard::Lost,
            });
        }
    }

    fn set_live(&self, live: bool) {
        *self.live_since.lock().unwrap_or_else(PoisonError::into_inner) = live.then(Instant::now);
    }
}

async fn subscribe_forever(inner: std::sync::Weak<Inner>, closed: Arc<tokio::sync::Notify>) {
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let Some(remote) = &strong.remote else { return };
        let subscribed = tokio::time::timeout(SUBSCRIBE_TIMEOUT, async {
            let mut pubsub = remote.client.get_async_pubsub().await?;
            pubsub.subscribe(&remote.channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        match subscribed {
            Ok(Ok(pubsub)) => {
                strong.set_live(true);
                tracing::debug!("invalidations are live");
                let mut messages = pubsub.into_on_message();
                drop(strong);
                loop {
                    let msg = tokio::select! {
                        msg = messages.next() => msg,
                        () = closed.notified() => return,
                    };
                    let Some(msg) = msg else { break };
                    let Some(strong) = inner.upgrade() else { return };
                    if let Some(message) = from_elsewhere(&strong.origin, msg.get_payload_bytes()) {
                        strong.hear(Heard::Message(message));
                    }
                }
                let Some(strong) = inner.upgrade() else { return };
                strong.set_live(false);
                strong.hear(Heard::Lost);
                tracing::warn!("the invalidation subscription dropped; reading shared state from Redis until it is back");
            }
            // Not live before either: nothing was believed, nothing to drop.
            Ok(Err(_)) | Err(_) => drop(strong),
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn the_in_process_bus_is_live_and_hands_every_message_to_every_listener() {
        let bus = Bus::local();
        assert!(bus.live_since().is_some());
        let heard = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let heard = heard.clone();
            bus.listen(move |h| {
                if matches!(h, Heard::Message(b"tenant p:x")) {
                    heard.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        bus.deliver(b"tenant p:x");
        assert_eq!(heard.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_replica_skips_its_own_framed_messages_and_hears_everyone_elses() {
        let (one, two) = (Bus::local(), Bus::local());
        let framed = one.framed(b"events [1]");
        assert_eq!(from_elsewhere(&one.inner.origin, &framed), None);
        assert_eq!(from_elsewhere(&two.inner.origin, &framed), Some(&b"events [1]"[..]));
        assert_eq!(from_elsewhere(&two.inner.origin, b"tenant p:x"), Some(&b"tenant p:x"[..]), "an unframed message");
    }
}
