use async_graphql::{Context, Object, SimpleObject};

use crate::{
    auth::{Role, Scope},
    graphql::{
        guards::{KeyScope, Public, RoleAtLeast},
        request,
        types::{ByteCountField, Tenant},
    },
};

/// The agency's file storage: its quota and what its documents use.
#[derive(SimpleObject)]
pub struct StorageUsage {
    pub quota_bytes: ByteCountField,
    pub used_bytes: ByteCountField,
    /// The largest file one upload may carry.
    pub max_file_bytes: ByteCountField,
}

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

    /// The agency's storage quota and use.
    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::Read))")]
    async fn storage_usage(&self, ctx: &Context<'_>) -> async_graphql::Result<StorageUsage> {
        let (quota_bytes, used_bytes) = crate::files::quota::usage(request(ctx)?.db()?).await?;
        let state = ctx.data::<crate::state::AppState>()?;
        Ok(StorageUsage {
            quota_bytes: quota_bytes.try_into(),
            used_bytes: used_bytes.try_into(),
            max_file_bytes: state.settings.storage.max_file_bytes.try_into(),
        })
    }
}
