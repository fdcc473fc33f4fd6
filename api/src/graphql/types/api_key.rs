use async_graphql::{ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};

use crate::auth::Scope;

/// An integrator's key. The secret is never shown again after creation.
#[derive(SimpleObject)]
pub struct ApiKey {
    pub id: ID,
    pub name: String,
    /// The visible start of the key (`agk_{prefix}_…`), to tell keys apart.
    pub prefix: String,
    pub scope: Scope,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<entity::api_keys::Model> for ApiKey {
    fn from(k: entity::api_keys::Model) -> Self {
        Self {
            id: ID(k.id.to_string()),
            name: k.name,
            prefix: k.prefix,
            scope: Scope::parse(&k.scope).unwrap_or(Scope::Read),
            created_at: k.created_at,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct CreatedApiKey {
    pub api_key: ApiKey,
    /// The whole key. Shown this once: store it now.
    pub secret: String,
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub name: String,
    pub scope: Scope,
    pub expires_at: Option<DateTime<Utc>>,
}
