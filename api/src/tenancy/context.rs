//! The per-request context placed in the GraphQL request data: who the
//! request is for, its id, its tenant-scoped database handle and its
//! dataloaders. Built fresh for every request and dropped with it, so nothing
//! here is ever shared between requests or tenants.

use std::sync::Arc;

use crate::{
    auth::Principal,
    error::{ApiError, ApiResult},
    graphql::loaders::Loaders,
    store::{Database, TenantDb, sessions::ClientInfo},
};

use super::{ResolvedTenant, Tenant};

#[derive(Debug)]
pub struct RequestContext {
    pub request_id: String,
    pub resolved: ResolvedTenant,
    pub principal: Principal,
    pub client: ClientInfo,
    scope: Option<Scope>,
}

#[derive(Debug)]
struct Scope {
    db: Arc<TenantDb>,
    loaders: Loaders,
}

impl RequestContext {
    /// Anonymous until the HTTP layer authenticates the request, and a
    /// reader until it says the operation writes ([`Self::begin_writing`]).
    pub fn new(request_id: String, resolved: ResolvedTenant, client: ClientInfo, db: &Database) -> Self {
        let scope = resolved.tenant.as_ref().map(|t| {
            let db = Arc::new(db.scoped_reader(t.id));
            Scope { loaders: Loaders::new(db.clone()), db }
        });
        Self { request_id, resolved, principal: Principal::Anonymous, client, scope }
    }

    pub fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.client.ip.as_deref().and_then(|ip| ip.parse().ok())
    }

    /// The request's tenant, or `TENANT_REQUIRED` on the bare API host.
    pub fn tenant(&self) -> ApiResult<&Tenant> {
        self.resolved.tenant.as_ref().ok_or(ApiError::TenantRequired)
    }

    /// The tenant-scoped database handle.
    pub fn db(&self) -> ApiResult<&Arc<TenantDb>> {
        self.scope.as_ref().map(|s| &s.db).ok_or(ApiError::TenantRequired)
    }

    pub fn loaders(&self) -> ApiResult<&Loaders> {
        self.scope.as_ref().map(|s| &s.loaders).ok_or(ApiError::TenantRequired)
    }

    /// Records an audit event in the request's transaction, as the request's
    /// principal: it commits with the change or not at all.
    pub async fn audit(&self, event: crate::store::audit::Event<'_>) -> ApiResult<()> {
        crate::store::audit::record(self.db()?, self.principal.actor(), &self.request_id, event).await
    }

    /// The operation may write (it is not a query): the request's tenant
    /// handle becomes a writer (see [`TenantDb::begin_writing`]).
    pub async fn begin_writing(&self) -> ApiResult<()> {
        match &self.scope {
            Some(scope) => Ok(scope.db.begin_writing().await?),
            None => Ok(()),
        }
    }

    /// Commits (or rolls back) the request's transaction, if it opened one.
    pub async fn finish(&self, commit: bool) -> Result<(), sea_orm::DbErr> {
        match &self.scope {
            Some(scope) => scope.db.finish(commit).await,
            None => Ok(()),
        }
    }
}
