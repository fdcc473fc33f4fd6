use async_graphql::{Context, Guard};

use super::{principal, refuse};
use crate::auth::Principal;

/// A platform administrator, on the general API host.
pub struct PlatformAdminOnly;

impl Guard for PlatformAdminOnly {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        match principal(ctx)? {
            Principal::PlatformAdmin(_) => Ok(()),
            other => Err(refuse(other, "this needs a platform administrator")),
        }
    }
}
