//! Download links: a presigned GET on S3, a signed `/files/…` link served by
//! the API on local storage. Issuing one is audited.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{Grant, sign_grant, storage_failed, version_of};
use crate::{error::ApiResult, startup::AppState, store::audit::Event, tenancy::RequestContext};

/// What a download link or URL points at.
#[derive(Debug, Clone)]
pub struct DownloadLink {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// A download link: one version of one document.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DownloadGrant {
    pub doc: Uuid,
    pub ver: Uuid,
}

impl Grant for DownloadGrant {
    const PURPOSE: &'static str = "download";
}

/// A short-lived way to fetch one version (the current one when `version`
/// is `None`).
pub async fn download_link(state: &AppState, r: &RequestContext, document_id: Uuid, version: Option<i32>) -> ApiResult<DownloadLink> {
    let db = r.db()?.as_ref();
    // The document is the field's parent, already read in this tenant.
    let v = version_of(db, document_id, version).await?;
    let ttl = Duration::from_secs(state.settings.storage.url_ttl_secs);
    let expires_at = Utc::now() + chrono::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(300));
    let url = match state.objects.presigned_get(&v.storage_key, ttl).await.map_err(storage_failed)? {
        Some(url) => url,
        None => {
            let grant = sign_grant(state, db.tenant(), ttl, &DownloadGrant { doc: document_id, ver: v.id })?;
            format!("/files/{grant}")
        }
    };
    r.audit(Event {
        action: "document.download_url",
        target_type: "document",
        target_id: Some(document_id),
        changes: Some(json!({ "version": v.version })),
    })
    .await?;
    Ok(DownloadLink { url, expires_at })
}
