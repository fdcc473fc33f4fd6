//! The per-request context: who the request is for and who it acts as, its
//! id, and its tenant-scoped database handle (the request's transaction).
//! Built fresh for every request and dropped with it, so nothing here is
//! ever shared between requests or tenants. The HTTP layer builds it; the
//! services and the schema read it.

use std::sync::{Arc, Mutex, PoisonError};

use crate::{
    auth::Principal,
    events::{Change, ChangeKind, Outbox, Topic},
    error::{ApiError, ApiResult},
    store::{Database, TenantDb, sessions::ClientInfo},
    tenancy::{ResolvedTenant, Tenant},
};

#[derive(Debug)]
pub struct RequestContext {
    pub request_id: String,
    pub resolved: ResolvedTenant,
    pub principal: Principal,
    /// The request sent a credential that was refused: it runs as
    /// anonymous, and every field but the sign-in ones answers
    /// `UNAUTHENTICATED`.
    pub credential_refused: bool,
    pub client: ClientInfo,
    db: Option<Arc<TenantDb>>,
    /// What services above this layer keep for the rest of the request
    /// (files staged by a multipart body, download links issued), by type;
    /// the HTTP layer settles them once the transaction has ended.
    extensions: Mutex<poem::http::Extensions>,
}

impl RequestContext {
    /// Anonymous until the HTTP layer authenticates the request, and a
    /// reader until it says the operation writes ([`Self::begin_writing`]).
    pub fn new(request_id: String, resolved: ResolvedTenant, client: ClientInfo, db: &Database) -> Self {
        let db = resolved.tenant.as_ref().map(|t| Arc::new(db.scoped_query(t.id)));
        Self { request_id, resolved, principal: Principal::Anonymous, credential_refused: false, client, db, extensions: Mutex::default() }
    }

    /// The request's `T`, if something put one there.
    pub fn extension<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.extensions.lock().unwrap_or_else(PoisonError::into_inner).get::<Arc<T>>().cloned()
    }

    /// The request's `T`, made by `make` on first use.
    pub fn extension_or_insert_with<T: Send + Sync + 'static>(&self, make: impl FnOnce() -> T) -> Arc<T> {
        let mut extensions = self.extensions.lock().unwrap_or_else(PoisonError::into_inner);
        extensions.get_or_insert_with(|| Arc::new(make())).clone()
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
        self.db.as_ref().ok_or(ApiError::TenantRequired)
    }

    /// Records an audit event in the request's transaction, as the request's
    /// principal: it commits with the change or not at all.
    /// Owners and admins following the audit trail live hear of it once
    /// the change commits.
    pub async fn audit(&self, event: crate::store::audit::Event<'_>) -> ApiResult<()> {
        let db = self.db()?;
        let id = crate::store::audit::record(db, self.principal.actor(), &self.request_id, event).await?;
        self.announce(Change::new(db.tenant(), Topic::Audit, ChangeKind::Created, id));
        Ok(())
    }

    /// A change this request made, published to live subscribers once (and
    /// only if) its transaction commits.
    pub fn announce(&self, change: Change) {
        self.extension_or_insert_with(Outbox::default).push(change);
    }

    /// The operation may write (it is not a query): the request's tenant
    /// handle becomes a writer (see [`TenantDb::begin_writing`]).
    pub async fn begin_writing(&self) -> ApiResult<()> {
        match &self.db {
            Some(db) => Ok(db.begin_writing().await?),
            None => Ok(()),
        }
    }

    /// Commits (or rolls back) the request's transaction, if it opened one.
    pub async fn finish(&self, commit: bool) -> Result<(), sea_orm::DbErr> {
        match &self.db {
            Some(db) => db.finish(commit).await,
            None => Ok(()),
        }
    }
}
