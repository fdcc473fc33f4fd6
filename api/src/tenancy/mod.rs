//! Tenancy: which agency a request is for, decided from its Host. Nothing
//! here may let a request reach a tenant other than the one its host (or,
//! on the API host, its `X-Tenant` header) names.

mod host;
mod resolve;

pub use host::{HostKind, classify_host};
pub use resolve::{ResolvedTenant, TenantResolver};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The request's tenant, as resolution (and its cache) sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub subdomain: String,
    pub custom_domain: Option<String>,
    pub is_active: bool,
}

impl From<entity::tenants::Model> for Tenant {
    fn from(m: entity::tenants::Model) -> Self {
        Self { id: m.id, name: m.name, subdomain: m.subdomain, custom_domain: m.custom_domain, is_active: m.is_active }
    }
}
