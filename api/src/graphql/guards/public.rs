use async_graphql::{Context, Guard};

/// Open to anyone, anonymous included: a decision, not a default.
pub struct Public;

impl Guard for Public {
    async fn check(&self, _ctx: &Context<'_>) -> async_graphql::Result<()> {
        Ok(())
    }
}
