//! Field guards, one per file. Every root field carries exactly one decision
//! (possibly `Public`), so no field is open by default; the authorization
//! matrix test walks the schema and fails on a field it has no rule for.

mod key_scope;
mod platform_admin;
mod public;
mod role_at_least;
mod signed_in;

pub use key_scope::KeyScope;
pub use platform_admin::PlatformAdminOnly;
pub use public::Public;
pub use role_at_least::RoleAtLeast;
pub use signed_in::SignedIn;

use async_graphql::Context;

use crate::{auth::Principal, error::ApiError};

fn principal<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Principal> {
    Ok(&super::request(ctx)?.principal)
}

/// Anonymous callers are told to authenticate; others that fail a guard are
/// told they may not.
fn refuse(principal: &Principal, why: &'static str) -> async_graphql::Error {
    match principal {
        Principal::Anonymous => ApiError::Unauthenticated.into(),
        _ => ApiError::Forbidden(why).into(),
    }
}
