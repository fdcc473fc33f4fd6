use async_graphql::{ID, SimpleObject};
use chrono::{DateTime, Utc};

/// An agency on Aggios.
#[derive(SimpleObject)]
pub struct Tenant {
    pub id: ID,
    pub name: String,
    /// The agency lives at `{subdomain}.{base domain}`.
    pub subdomain: String,
    /// Its own domain, when it has one.
    pub custom_domain: Option<String>,
    /// An inactive agency can do nothing until reactivated.
    pub is_active: bool,
    /// Set when the agency was read from the database (not from the
    /// request's cached resolution).
    pub created_at: Option<DateTime<Utc>>,
}

impl From<&crate::tenancy::Tenant> for Tenant {
    fn from(t: &crate::tenancy::Tenant) -> Self {
        Self {
            id: ID(t.id.to_string()),
            name: t.name.clone(),
            subdomain: t.subdomain.clone(),
            custom_domain: t.custom_domain.clone(),
            is_active: t.is_active,
            created_at: None,
        }
    }
}

impl From<entity::tenants::Model> for Tenant {
    fn from(t: entity::tenants::Model) -> Self {
        Self {
            id: ID(t.id.to_string()),
            name: t.name,
            subdomain: t.subdomain,
            custom_domain: t.custom_domain,
            is_active: t.is_active,
            created_at: Some(t.created_at),
        }
    }
}
