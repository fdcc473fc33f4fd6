use async_graphql::{ID, SimpleObject};

/// An agency on Aggios.
#[derive(SimpleObject)]
pub struct Tenant {
    pub id: ID,
    pub name: String,
    /// The agency lives at `{subdomain}.{base domain}`.
    pub subdomain: String,
    /// Its own domain, when it has one.
    pub custom_domain: Option<String>,
}

impl From<&crate::tenancy::Tenant> for Tenant {
    fn from(t: &crate::tenancy::Tenant) -> Self {
        Self { id: ID(t.id.to_string()), name: t.name.clone(), subdomain: t.subdomain.clone(), custom_domain: t.custom_domain.clone() }
    }
}
