//! Who a request acts as.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A tenant role; the order is the order of power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "MEMBER",
            Role::Admin => "ADMIN",
            Role::Owner => "OWNER",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "MEMBER" => Some(Role::Member),
            "ADMIN" => Some(Role::Admin),
            "OWNER" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Scope {
    Read,
    ReadWrite,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "READ",
            Scope::ReadWrite => "READ_WRITE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "READ" => Some(Scope::Read),
            "READ_WRITE" => Some(Scope::ReadWrite),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPrincipal {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub role: Role,
    pub email: String,
    /// The session (refresh-token family) the access token belongs to.
    pub session_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyPrincipal {
    pub key_id: Uuid,
    pub tenant_id: Uuid,
    pub scope: Scope,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminPrincipal {
    pub admin_id: Uuid,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Principal {
    #[default]
    Anonymous,
    User(UserPrincipal),
    ApiKey(ApiKeyPrincipal),
    PlatformAdmin(AdminPrincipal),
}

impl Principal {
    pub fn user(&self) -> Option<&UserPrincipal> {
        match self {
            Principal::User(u) => Some(u),
            _ => None,
        }
    }

    /// For audit records: the acting user or key.
    pub fn actor(&self) -> (Option<Uuid>, Option<Uuid>) {
        match self {
            Principal::User(u) => (Some(u.user_id), None),
            Principal::ApiKey(k) => (None, Some(k.key_id)),
            _ => (None, None),
        }
    }
}
