use async_graphql::{Context, Guard};

use super::{principal, refuse};
use crate::auth::Principal;

/// A signed-in user of the request's tenant (not an API key, not a platform
/// administrator).
pub struct SignedIn;

impl Guard for SignedIn {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        match principal(ctx)? {
            Principal::User(_) => Ok(()),
            other => Err(refuse(other, "this needs a signed-in user")),
        }
    }
}
