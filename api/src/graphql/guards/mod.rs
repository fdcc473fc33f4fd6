//! Field guards, one per file. Every root field carries exactly one decision
//! (possibly `Public`), so no field is open by default; the authorization
//! matrix test walks the schema and fails on a field it has no rule for.

mod key_scope;
mod platform_admin;
mod public;
mod role_at_least;
mod sign_in;
mod signed_in;

pub use key_scope::KeyScope;
pub use platform_admin::PlatformAdminOnly;
pub use public::Public;
pub use role_at_least::RoleAtLeast;
pub use sign_in::SignIn;
pub use signed_in::SignedIn;

use async_graphql::Context;

use crate::{auth::Principal, error::ApiError};

/// The request's principal. A request whose credential was refused
/// (expired, revoked, garbage) has none: every guard but `SignIn` answers
/// `UNAUTHENTICATED` for it, as a GraphQL error a client can act on
/// (refresh, then retry), not an HTTP refusal of the whole request.
fn principal<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Principal> {
    let request = super::request(ctx)?;
    if request.credential_refused {
        return Err(ApiError::CredentialRefused.into());
    }
    Ok(&request.principal)
}

/// Anonymous callers are told to authenticate; others that fail a guard are
/// told they may not.
fn refuse(principal: &Principal, why: &'static str) -> async_graphql::Error {
    match principal {
        Principal::Anonymous => ApiError::Unauthenticated.into(),
        _ => ApiError::Forbidden(why).into(),
    }
}
