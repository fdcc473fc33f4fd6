use async_graphql::{Context, Guard};

use super::{principal, refuse};
use crate::auth::{Principal, Scope};

/// An API key of the request's tenant with at least the given scope.
/// Combine with a role guard (`.or(...)`) where users may act too.
pub struct KeyScope(pub Scope);

impl Guard for KeyScope {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        match principal(ctx)? {
            Principal::ApiKey(k) if k.scope >= self.0 => Ok(()),
            other => Err(refuse(
                other,
                match self.0 {
                    Scope::ReadWrite => "this needs a user with the right role or a READ_WRITE API key",
                    Scope::Read => "this needs a user with the right role or an API key",
                },
            )),
        }
    }
}
