use async_graphql::{Context, ID, Object};

use crate::{
    identity::flows::{self, SignUp, SignedIn},
    graphql::{
        guards::{SignIn, SignedIn as SignedInGuard},
        parse_id, request, state,
        types::{AuthPayload, ChangePasswordInput, LoginInput, SignUpInput},
    },
};

impl From<SignedIn> for AuthPayload {
    fn from(s: SignedIn) -> Self {
        Self {
            access_token: s.access_token,
            access_token_expires_at: s.access_expires_at,
            refresh_token: s.refresh_token,
            refresh_token_expires_at: s.refresh_expires_at,
            user: s.user.into(),
            tenant: s.tenant.into(),
        }
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates an agency and its owner, and signs the owner in. On the
    /// general API host.
    #[graphql(guard = "SignIn")]
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> async_graphql::Result<AuthPayload> {
        let input = SignUp {
            agency_name: input.agency_name,
            subdomain: input.subdomain,
            email: input.email,
            password: input.password,
            first_name: input.first_name,
            last_name: input.last_name,
        };
        Ok(flows::sign_up(&state(ctx)?.identity, request(ctx)?, input).await?.into())
    }

    /// Signs in with email and password: on the agency's host, or on the API
    /// host (naming the agency when the email belongs to several).
    #[graphql(guard = "SignIn")]
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> async_graphql::Result<AuthPayload> {
        let r = request(ctx)?;
        Ok(flows::login(&state(ctx)?.identity, r, &input.email, &input.password, input.agency.as_deref()).await?.into())
    }

    /// Trades a refresh token for a new access token and a new refresh token.
    /// A refresh token works once; presenting a spent one ends its session.
    #[graphql(guard = "SignIn")]
    async fn refresh_session(&self, ctx: &Context<'_>, refresh_token: String) -> async_graphql::Result<AuthPayload> {
        Ok(flows::refresh(&state(ctx)?.identity, request(ctx)?, &refresh_token).await?.into())
    }

    /// Ends this session.
    #[graphql(guard = "SignedInGuard")]
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(flows::logout(&state(ctx)?.identity, request(ctx)?).await?)
    }

    /// Ends every session of the signed-in user, on every device; returns how
    /// many were live.
    #[graphql(guard = "SignedInGuard")]
    async fn logout_everywhere(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        Ok(flows::logout_everywhere(&state(ctx)?.identity, request(ctx)?).await?)
    }

    /// Ends one of the signed-in user's sessions (see `mySessions`).
    #[graphql(guard = "SignedInGuard")]
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let id = parse_id(&id, "session")?;
        Ok(flows::revoke_session(&state(ctx)?.identity, request(ctx)?, id).await?)
    }

    /// Changes the password, ends every session, and returns a new one for
    /// this client.
    #[graphql(guard = "SignedInGuard")]
    async fn change_password(&self, ctx: &Context<'_>, input: ChangePasswordInput) -> async_graphql::Result<AuthPayload> {
        Ok(flows::change_password(&state(ctx)?.identity, request(ctx)?, &input.current_password, &input.new_password).await?.into())
    }
}
