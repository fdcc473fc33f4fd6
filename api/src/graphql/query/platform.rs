use async_graphql::{Context, Object};

use crate::{
    graphql::{guards::PlatformAdminOnly, state, types::Tenant},
    store,
};

#[derive(Default)]
pub struct PlatformQuery;

#[Object]
impl PlatformQuery {
    /// Every agency on the platform (platform administrators).
    #[graphql(guard = "PlatformAdminOnly")]
    async fn platform_tenants(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Tenant>> {
        let s = state(ctx)?;
        Ok(store::platform::tenants(s.db.platform()).await?.into_iter().map(Tenant::from).collect())
    }
}
