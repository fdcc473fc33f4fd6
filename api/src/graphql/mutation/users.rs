use async_graphql::{Context, ID, Object};

use crate::{
    auth::Role,
    identity::accounts::{self, AccountChanges, NewAccount},
    graphql::{
        guards::RoleAtLeast,
        parse_id, request, state,
        types::{CreateUserInput, UpdateUserInput, User},
    },
};

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Adds a user to the agency. Only an owner can add an owner.
    #[graphql(guard = "RoleAtLeast(Role::Admin)")]
    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> async_graphql::Result<User> {
        let new = NewAccount {
            email: input.email,
            password: input.password,
            first_name: input.first_name,
            last_name: input.last_name,
            role: input.role,
        };
        Ok(accounts::create(&state(ctx)?.auth, request(ctx)?, new).await?.into())
    }

    /// Changes a user's email or names.
    #[graphql(guard = "RoleAtLeast(Role::Admin)")]
    async fn update_user(&self, ctx: &Context<'_>, id: ID, input: UpdateUserInput) -> async_graphql::Result<User> {
        let id = parse_id(&id, "user")?;
        let changes = AccountChanges { email: input.email, first_name: input.first_name, last_name: input.last_name };
        Ok(accounts::update(&state(ctx)?.auth, request(ctx)?, id, changes).await?.into())
    }

    /// Changes a user's role. The last active owner cannot be demoted.
    #[graphql(guard = "RoleAtLeast(Role::Admin)")]
    async fn change_user_role(&self, ctx: &Context<'_>, id: ID, role: Role) -> async_graphql::Result<User> {
        let id = parse_id(&id, "user")?;
        Ok(accounts::change_role(&state(ctx)?.auth, request(ctx)?, id, role).await?.into())
    }

    /// Deactivates a user and ends their sessions at once. The last active
    /// owner cannot be deactivated.
    #[graphql(guard = "RoleAtLeast(Role::Admin)")]
    async fn deactivate_user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<User> {
        let id = parse_id(&id, "user")?;
        Ok(accounts::set_active(&state(ctx)?.auth, request(ctx)?, id, false).await?.into())
    }

    /// Lets a deactivated user sign in again.
    #[graphql(guard = "RoleAtLeast(Role::Admin)")]
    async fn reactivate_user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<User> {
        let id = parse_id(&id, "user")?;
        Ok(accounts::set_active(&state(ctx)?.auth, request(ctx)?, id, true).await?.into())
    }
}
