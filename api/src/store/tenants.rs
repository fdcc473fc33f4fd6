//! Tenants: creation with the subdomain rules of SPEC §3, and look-ups by
//! host. The `tenants` table is platform-level (read before any tenant is
//! known), so these functions take the platform connection.

use chrono::Utc;
use entity::tenants;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect as _};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// Names that belong to the platform and can never be a tenant's subdomain.
pub const RESERVED_SUBDOMAINS: &[&str] = &[
    "api", "www", "admin", "app", "auth", "login", "static", "assets", "cdn", "mail", "smtp", "status",
    "docs", "help", "support", "billing", "dashboard", "playground", "graphql", "internal", "system",
    "root", "traefik", "minio", "s3", "metrics", "grafana", "health",
];

/// 10 GiB unless the platform says otherwise.
pub const DEFAULT_STORAGE_QUOTA_BYTES: i64 = 10 * 1024 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct NewTenant {
    pub name: String,
    pub subdomain: String,
    pub custom_domain: Option<String>,
}

pub fn validate_subdomain(subdomain: &str) -> ApiResult<()> {
    let bad = |message: &str| ApiError::BadUserInput { field: "subdomain", message: message.into() };
    if !(3..=63).contains(&subdomain.len()) {
        return Err(bad("must be 3 to 63 characters long"));
    }
    if !subdomain.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(bad("use lower-case letters a-z, digits and '-' only"));
    }
    if subdomain.starts_with('-') || subdomain.ends_with('-') {
        return Err(bad("cannot start or end with '-'"));
    }
    if RESERVED_SUBDOMAINS.contains(&subdomain) {
        return Err(bad("this name is reserved; choose another"));
    }
    Ok(())
}

/// An agency's name, as the field `field` (`name` on the CLI, `agencyName` at sign-up).
pub fn validate_name(field: &'static str, name: &str) -> ApiResult<String> {
    super::validate::name(field, name, 200)
}

fn validate_custom_domain(domain: &str) -> ApiResult<()> {
    if domain.contains('.') && crate::net::is_hostname(domain) {
        Ok(())
    } else {
        Err(ApiError::BadUserInput { field: "customDomain", message: "must be a lower-case host name such as `portal.acme.com`".into() })
    }
}

/// Creates the tenant `id`. Its first owner is written in the same
/// transaction by sign-up; the CLI creates tenants on their own.
#[tracing::instrument(skip(conn))]
pub async fn create(conn: &impl ConnectionTrait, id: Uuid, new: NewTenant) -> ApiResult<tenants::Model> {
    let name = validate_name("name", &new.name)?;
    validate_subdomain(&new.subdomain)?;
    if let Some(domain) = &new.custom_domain {
        validate_custom_domain(domain)?;
    }
    let now = Utc::now();
    let model = tenants::ActiveModel {
        id: Set(id),
        name: Set(name),
        subdomain: Set(new.subdomain.clone()),
        custom_domain: Set(new.custom_domain.clone()),
        is_active: Set(true),
        storage_quota_bytes: Set(DEFAULT_STORAGE_QUOTA_BYTES),
        storage_used_bytes: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    };
    tenants::Entity::insert(model)
        .exec_with_returning(conn)
        .await
        .map_err(|e| super::conflict_on_unique(e, "that subdomain or custom domain is already taken"))
}

pub async fn by_subdomain(conn: &impl ConnectionTrait, subdomain: &str) -> ApiResult<Option<tenants::Model>> {
    Ok(tenants::Entity::find().filter(tenants::Column::Subdomain.eq(subdomain)).one(conn).await?)
}

pub async fn by_id(conn: &impl ConnectionTrait, id: Uuid) -> ApiResult<Option<tenants::Model>> {
    Ok(tenants::Entity::find_by_id(id).one(conn).await?)
}

pub async fn by_custom_domain(conn: &impl ConnectionTrait, domain: &str) -> ApiResult<Option<tenants::Model>> {
    Ok(tenants::Entity::find().filter(tenants::Column::CustomDomain.eq(domain)).one(conn).await?)
}

/// Every tenant's id (for platform jobs such as the storage sweeper).
pub async fn all_ids(conn: &impl ConnectionTrait) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    tenants::Entity::find().select_only().column(tenants::Column::Id).into_tuple().all(conn).await
}

/// Sets a tenant's storage quota, in bytes.
pub async fn set_quota(conn: &impl ConnectionTrait, id: Uuid, bytes: i64) -> ApiResult<()> {
    if bytes < 0 {
        return Err(ApiError::BadUserInput { field: "bytes", message: "must not be negative".into() });
    }
    let done = tenants::Entity::update_many()
        .col_expr(tenants::Column::StorageQuotaBytes, sea_orm::sea_query::Expr::value(bytes))
        .filter(tenants::Column::Id.eq(id))
        .exec(conn)
        .await?;
    if done.rows_affected == 0 {
        return Err(ApiError::TenantNotFound);
    }
    Ok(())
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains_follow_the_rules_of_the_spec() {
        assert!(validate_subdomain("acme").is_ok());
        assert!(validate_subdomain("acme-2").is_ok());
        for bad in ["ab", "Acme", "acme_co", "-acme", "acme-", "api", "www", "admin", &"a".repeat(64)] {
            assert!(validate_subdomain(bad).is_err(), "{bad} was accepted");
        }
    }
}
