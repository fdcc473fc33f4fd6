use async_graphql::{ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};

use crate::{auth::Role, store::rows::UserRow};

/// A person of the agency.
#[derive(SimpleObject)]
pub struct User {
    pub id: ID,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<entity::users::Model> for User {
    fn from(u: entity::users::Model) -> Self {
        Self::from(&UserRow::from(u))
    }
}

impl From<&UserRow> for User {
    fn from(u: &UserRow) -> Self {
        Self {
            id: ID(u.id.to_string()),
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            role: Role::parse(&u.role).unwrap_or(Role::Member),
            is_active: u.is_active,
            created_at: u.created_at,
        }
    }
}

#[derive(InputObject)]
pub struct CreateUserInput {
    pub email: String,
    /// 8 to 128 characters, not a common or easily guessed password.
    pub password: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
}

/// Only the fields given change.
#[derive(InputObject)]
pub struct UpdateUserInput {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}
