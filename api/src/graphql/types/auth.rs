use async_graphql::{InputObject, SimpleObject};
use chrono::{DateTime, Utc};

use super::{Tenant, User};

/// A signed-in session: a short-lived access token (send it as
/// `Authorization: Bearer …` to the agency's host) and a refresh token to get
/// the next one.
#[derive(SimpleObject)]
pub struct AuthPayload {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    /// Single use: each refresh returns a new one.
    pub refresh_token: String,
    pub refresh_token_expires_at: DateTime<Utc>,
    pub user: User,
    pub tenant: Tenant,
}

#[derive(SimpleObject)]
pub struct PlatformAuthPayload {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
}

#[derive(InputObject)]
pub struct SignUpInput {
    pub agency_name: String,
    /// 3 to 63 of a-z, 0-9 and '-'; some names are reserved.
    pub subdomain: String,
    pub email: String,
    pub password: String,
    pub first_name: String,
    pub last_name: String,
}

#[derive(InputObject)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
    /// The agency's subdomain, when signing in on the general API host with
    /// an email known to several agencies.
    pub agency: Option<String>,
}

#[derive(InputObject)]
pub struct ChangePasswordInput {
    pub current_password: String,
    pub new_password: String,
}
