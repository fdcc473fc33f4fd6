//! `[subscriptions]`: what live connections (GraphQL subscriptions over
//! WebSocket) may hold. Each bound keeps one client from making the server
//! keep more than its share: sockets, subscriptions, queued events.

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionSettings {
    /// Subscriptions one connection may run at once.
    pub max_per_connection: usize,
    /// Connections one user (or API key) may hold open on one replica.
    pub max_connections_per_user: usize,
    /// Connections one agency may hold open on one replica.
    pub max_connections_per_agency: usize,
    /// The largest message a client may send.
    pub max_message_bytes: usize,
    /// How often the server pings; a connection that has sent nothing for
    /// twice this long is closed.
    pub keepalive_secs: u64,
    /// How long a new connection may take to send `connection_init`.
    pub init_timeout_secs: u64,
    /// Messages queued for a connection that reads too slowly before it is
    /// closed (1013) rather than buffered without bound.
    pub max_queued_messages: usize,
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        Self {
            max_per_connection: 100,
            max_connections_per_user: 100,
            max_connections_per_agency: 10_000,
            max_message_bytes: 64 * 1024,
            keepalive_secs: 15,
            init_timeout_secs: 10,
            max_queued_messages: 256,
        }
    }
}

impl SubscriptionSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (name, v) in [
            ("subscriptions.max_per_connection", self.max_per_connection),
            ("subscriptions.max_connections_per_user", self.max_connections_per_user),
            ("subscriptions.max_connections_per_agency", self.max_connections_per_agency),
            ("subscriptions.max_queued_messages", self.max_queued_messages),
        ] {
            if v == 0 {
                return Err(invalid(name, "must be at least 1"));
            }
        }
        if self.max_message_bytes < 1024 {
            return Err(invalid("subscriptions.max_message_bytes", "must be at least 1024"));
        }
        if self.keepalive_secs == 0 || self.init_timeout_secs == 0 {
            return Err(invalid("subscriptions.keepalive_secs", "keepalive_secs and init_timeout_secs must be at least 1"));
        }
        Ok(())
    }
}
