use async_graphql::{Context, Guard};

/// Open to anyone, anonymous included: a decision, not a default. A request
/// whose credential was refused is told so (it would otherwise get an
/// anonymous answer it did not ask for).
pub struct Public;

impl Guard for Public {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        super::principal(ctx).map(|_| ())
    }
}
