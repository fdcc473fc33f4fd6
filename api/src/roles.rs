//! The plain vocabulary of access: a user's role in an agency and an API
//! key's scope. The store saves them, `auth` checks them, the schema shows
//! them; they depend on nothing of the application.

use serde::{Deserialize, Serialize};

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
