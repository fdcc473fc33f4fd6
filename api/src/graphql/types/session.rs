use async_graphql::{ID, SimpleObject};
use chrono::{DateTime, Utc};

/// A signed-in device or browser: one refresh-token family.
#[derive(SimpleObject)]
pub struct Session {
    pub id: ID,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    pub last_used_at: DateTime<Utc>,
    /// Unused until then, it ends.
    pub idle_expires_at: DateTime<Utc>,
    /// It ends then, however it is used.
    pub expires_at: DateTime<Utc>,
    /// The session this request's access token belongs to.
    pub current: bool,
}

impl Session {
    pub fn from_row(r: entity::refresh_tokens::Model, current: uuid::Uuid) -> Self {
        Self {
            id: ID(r.family_id.to_string()),
            user_agent: r.user_agent,
            ip_address: r.client_ip,
            last_used_at: r.last_used_at,
            idle_expires_at: r.idle_expires_at,
            expires_at: r.expires_at,
            current: r.family_id == current,
        }
    }
}
