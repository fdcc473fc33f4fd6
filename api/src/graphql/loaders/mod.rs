//! Request-scoped, tenant-scoped dataloaders. A `Loaders` is built for one
//! request from that request's `TenantDb`, so its caches die with the request
//! and every batch it issues is scoped to that request's tenant.

mod users;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;

pub use users::UserLoader;

use crate::store::TenantDb;

pub struct Loaders {
    pub users: DataLoader<UserLoader>,
}

impl std::fmt::Debug for Loaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Loaders")
    }
}

impl Loaders {
    pub fn new(db: Arc<TenantDb>) -> Self {
        Self { users: DataLoader::new(UserLoader::new(db), tokio::spawn) }
    }
}
