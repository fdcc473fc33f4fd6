use async_graphql::{Context, Guard};

/// Open to anyone, whatever credential the request carries: signing up,
/// signing in and refreshing are how a client whose token expired (or was
/// never valid) gets a new one, and clients send their stale
/// `Authorization` header with them.
pub struct SignIn;

impl Guard for SignIn {
    async fn check(&self, _ctx: &Context<'_>) -> async_graphql::Result<()> {
        Ok(())
    }
}
