use async_graphql::{Context, ID, Object};

use crate::{
    auth::Role,
    error::ApiError,
    graphql::{
        guards::{RoleAtLeast, SignedIn},
        parse_id, request,
        types::{ApiKey, Session, User},
    },
    store,
};

#[derive(Default)]
pub struct IdentityQuery;

#[Object]
impl IdentityQuery {
    /// The signed-in user.
    #[graphql(guard = "SignedIn")]
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let r = request(ctx)?;
        let me = r.principal.user().ok_or(ApiError::Unauthenticated)?;
        Ok(store::users::by_id(r.db()?, me.user_id).await?.ok_or(ApiError::Unauthenticated)?.into())
    }

    /// The signed-in user's live sessions, most recently used first.
    #[graphql(guard = "SignedIn")]
    async fn my_sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Session>> {
        let r = request(ctx)?;
        let me = r.principal.user().ok_or(ApiError::Unauthenticated)?;
        let rows = store::sessions::live(r.db()?, me.user_id).await?;
        Ok(rows.into_iter().map(|row| Session::from_row(row, me.session_id)).collect())
    }

    /// The agency's users (admins and owners). API keys act on the agency's
    /// data, never on its users: they may not list them either.
    #[graphql(guard = "RoleAtLeast(Role::Admin)")]
    async fn users(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        let r = request(ctx)?;
        Ok(store::users::list(r.db()?).await?.into_iter().map(User::from).collect())
    }

    /// One user of the agency (admins and owners).
    #[graphql(guard = "RoleAtLeast(Role::Admin)")]
    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<User> {
        let r = request(ctx)?;
        let id = parse_id(&id, "user")?;
        Ok(store::users::by_id(r.db()?, id).await?.ok_or(ApiError::NotFound("user"))?.into())
    }

    /// The agency's API keys, revoked ones included.
    #[graphql(guard = "RoleAtLeast(Role::Admin)")]
    async fn api_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiKey>> {
        let r = request(ctx)?;
        Ok(store::api_keys::list(r.db()?).await?.into_iter().map(ApiKey::from).collect())
    }
}
