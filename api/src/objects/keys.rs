//! The keys objects are stored under, built from server-generated ids only:
//! nothing a user typed ever reaches a key or a path.

use uuid::Uuid;

/// The key of one version's bytes.
pub fn version_key(tenant: Uuid, version: Uuid) -> String {
    format!("{tenant}/documents/{version}")
}

/// The key a direct upload is PUT to. Its bytes are copied to the version's
/// key when the upload is confirmed, so no grant can reach bytes a version
/// points at.
pub fn staging_key(tenant: Uuid, version: Uuid) -> String {
    format!("{tenant}/uploads/{version}")
}

/// Whether `key` is a direct upload's staging key.
pub fn is_staging_key(key: &str) -> bool {
    key.split('/').nth(1) == Some("uploads")
}

/// The prefix of everything a tenant stores.
pub fn tenant_prefix(tenant: Uuid) -> String {
    format!("{tenant}/")
}
