//! Identity services: signing up, signing in and out, refreshing sessions,
//! changing passwords, and managing an agency's accounts. They stand on
//! `auth` (credentials and principals), `store` and `tenancy`, and act for
//! one request through its `RequestContext`.

pub mod accounts;
pub mod flows;

use crate::{auth::Auth, store::Database, tenancy::TenantResolver};

/// What the identity flows work with. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Identity {
    pub auth: Auth,
    pub db: Database,
    pub tenants: TenantResolver,
}
