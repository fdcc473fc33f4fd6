use async_graphql::{Context, Object};

use crate::graphql::{guards::Public, request, types::Tenant};

#[derive(Default)]
pub struct TenantQuery;

#[Object]
impl TenantQuery {
    /// The agency this request is for: the one named by the host, or by the
    /// `X-Tenant` header on the API host. Public: a sign-in page shows it.
    #[graphql(guard = "Public")]
    async fn tenant(&self, ctx: &Context<'_>) -> async_graphql::Result<Tenant> {
        Ok(request(ctx)?.tenant()?.into())
    }
}
