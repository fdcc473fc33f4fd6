use async_graphql::{Context, Guard};

use super::{principal, refuse};
use crate::auth::{Principal, Role};

/// A signed-in user whose role is at least the given one.
pub struct RoleAtLeast(pub Role);

impl Guard for RoleAtLeast {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        match principal(ctx)? {
            Principal::User(u) if u.role >= self.0 => Ok(()),
            other => Err(refuse(
                other,
                match self.0 {
                    Role::Owner => "this needs the OWNER role",
                    Role::Admin => "this needs the ADMIN or OWNER role",
                    Role::Member => "this needs a signed-in user",
                },
            )),
        }
    }
}
