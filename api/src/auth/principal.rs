//! Who a request acts as.

use uuid::Uuid;

pub use crate::roles::{Role, Scope};

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
