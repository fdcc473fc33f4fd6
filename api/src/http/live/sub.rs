//! One running subscription, and what makes two of them see the same answers.

use std::sync::Arc;

use async_graphql::Variables;

use super::Connection;
use crate::{auth::Principal, graphql::subscription::Interest};

/// A subscription's operation, as it runs for each change.
pub struct Operation {
    pub query: String,
    pub operation_name: Option<String>,
    pub variables: Variables,
}

/// One running subscription.
pub struct Sub {
    pub conn: Arc<Connection>,
    /// The client's id for it.
    pub id: String,
    pub interest: Interest,
    pub query: Arc<str>,
    pub operation_name: Option<String>,
    pub variables: Variables,
    /// Subscriptions with equal keys see the same answers: one run serves them.
    pub(super) group: Arc<str>,
}

impl Sub {
    pub fn new(conn: Arc<Connection>, id: String, interest: Interest, op: Operation) -> Self {
        let who = match &conn.principal {
            Principal::User(u) => format!("u {} {:?}", u.user_id, u.role),
            Principal::ApiKey(k) => format!("k {} {:?}", k.key_id, k.scope),
            Principal::PlatformAdmin(a) => format!("a {}", a.admin_id),
            Principal::Anonymous => "-".to_owned(),
        };
        let variables = serde_json::to_string(&op.variables).unwrap_or_default();
        let group = format!("{who}\n{}\n{variables}\n{}", op.operation_name.as_deref().unwrap_or(""), op.query);
        Self { conn, id, interest, query: op.query.into(), operation_name: op.operation_name, variables: op.variables, group: group.into() }
    }
}
