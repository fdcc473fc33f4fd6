//! Persisted queries (SPEC §7): documents registered by Apollo's automatic
//! persisted queries (`registered`), shared by every replica, and each
//! agency's trusted documents (`trusted`, from manifests read by
//! `manifest`). The HTTP layer resolves a request's document through them
//! before anything runs; nothing here executes GraphQL.

pub mod manifest;
pub mod registered;
pub mod trusted;

use std::sync::Arc;

pub use registered::Registered;
pub use trusted::{Mode, Policy, TrustedDocuments, TrustedList};

use crate::{cache::Cache, config::PersistedQuerySettings, request::RequestContext, store::Database};

/// What persisted queries work with. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Persisted {
    pub registered: Registered,
    pub trusted: TrustedDocuments,
}

impl Persisted {
    /// `shared`: Redis, when the deployment has one.
    pub fn new(db: Database, shared: Option<Arc<dyn Cache>>, settings: &PersistedQuerySettings) -> Self {
        Self { registered: Registered::new(shared, settings), trusted: TrustedDocuments::new(db, settings) }
    }
}

/// Marks a request that changed its agency's trusted documents (a manifest,
/// the mode): once it commits, this replica drops what it kept of them.
#[derive(Debug)]
pub struct TrustedChanged;

/// Settles what a request left: see [`TrustedChanged`].
pub fn after_request(persisted: &Persisted, ctx: &RequestContext, committed: bool) {
    if committed
        && ctx.extension::<TrustedChanged>().is_some()
        && let Ok(tenant) = ctx.tenant()
    {
        persisted.trusted.forget(tenant.id);
    }
}
