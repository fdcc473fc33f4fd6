//! Download links: a presigned GET on S3, a signed `/files/…` link served by
//! the API on local storage. Issuing them is audited once per request, not
//! once per link: the links a request issues are collected here and written
//! as one event after the request's transaction, in a transaction of its
//! own, so a read stays a read and a query full of links cannot fill the
//! trail (the complexity budget bounds how many one request may ask for).

use std::{
    sync::{Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{Files, Grant, sign_grant, storage_failed, version_of};
use crate::{
    error::ApiResult,
    store::{self, audit::Event},
    request::RequestContext,
};

/// The most (document, version) pairs one audit event lists; the event
/// still counts every link.
const MAX_LISTED: usize = 100;

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
pub async fn download_link(files: &Files, r: &RequestContext, document_id: Uuid, version: Option<i32>) -> ApiResult<DownloadLink> {
    let db = r.db()?.as_ref();
    // The document is the field's parent, already read in this tenant.
    let v = version_of(db, document_id, version).await?;
    let ttl = Duration::from_secs(files.storage.url_ttl_secs);
    let expires_at = Utc::now() + chrono::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(300));
    let url = match files.objects.presigned_get(&v.storage_key, ttl).await.map_err(storage_failed)? {
        Some(url) => url,
        None => {
            let grant = sign_grant(files, db.tenant(), ttl, &DownloadGrant { doc: document_id, ver: v.id })?;
            format!("/files/{grant}")
        }
    };
    r.extension_or_insert_with(IssuedLinks::default).add(document_id, v.version);
    Ok(DownloadLink { url, expires_at })
}

/// The links one request issued, in order.
#[derive(Debug, Default)]
pub struct IssuedLinks(Mutex<Vec<(Uuid, i32)>>);

impl IssuedLinks {
    fn add(&self, document: Uuid, version: i32) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push((document, version));
    }

    /// Writes the request's one `document.download_url` event. The links
    /// are already in the answer, so a failure here is logged, not answered.
    pub async fn record(&self, files: &Files, r: &RequestContext, tenant: Uuid) {
        let issued = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        let Some(&(first, _)) = issued.first() else { return };
        let one_document = issued.iter().all(|(d, _)| *d == first);
        let mut listed: Vec<(Uuid, i32)> = Vec::new();
        let mut truncated = false;
        for pair in &issued {
            if listed.contains(pair) {
                continue;
            }
            if listed.len() == MAX_LISTED {
                truncated = true;
                break;
            }
            listed.push(*pair);
        }
        let event = Event {
            action: "document.download_url",
            target_type: "document",
            target_id: one_document.then_some(first),
            changes: Some(json!({
                "links": issued.len(),
                "versions": listed.iter().map(|(d, v)| json!({ "documentId": d, "version": v })).collect::<Vec<_>>(),
                "truncated": truncated,
            })),
        };
        let db = files.db.scoped(tenant);
        let written = store::audit::record(&db, r.principal.actor(), &r.request_id, event).await;
        let finished = db.finish(written.is_ok()).await;
        if let Err(e) = written {
            tracing::error!(error = ?e, links = issued.len(), "recording issued download links in the audit trail");
        } else if let Err(e) = finished {
            tracing::error!(error = ?e, links = issued.len(), "committing the audit event of issued download links");
        }
    }
}
