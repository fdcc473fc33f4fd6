//! Direct uploads: the client PUTs its file straight to storage (a presigned
//! PUT on S3, a signed link served by the API on local storage), then
//! confirms it.
//!
//! - The grant reserves its size against the quota at once, so grants cannot
//!   add up past it; the reservation is consumed by the confirmation, or
//!   given back when the grant expires (`sweep::expire_grants`).
//! - The PUT goes to a staging key, `{tenant}/uploads/{version id}`, never to
//!   a key a version points at. Confirming copies the staged object to the
//!   version's key and checks the copy: a PUT racing the confirmation, or
//!   arriving after it, can change only the staging object, which nothing
//!   points at and which is removed. So an upload token is good for one
//!   confirmed version, and the bytes under that version never change.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::documents;
use uuid::Uuid;

use super::{Files, 
    Grant, NewBytes, Owner, checked_content_type, content_type_input, document_name, open_grant, or_discard, quota, record_new,
    record_version, sign_grant, storage_failed, version_of_id,
};
use crate::{
    error::{ApiError, ApiResult},
    objects::{self, StorageError},
    store::{self, upload_reservations},
    request::RequestContext,
};

/// A direct upload the client was allowed to make: what the grant carries.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UploadGrant {
    pub doc: Uuid,
    pub ver: Uuid,
    /// For a new document: its owner and name. For a new version: none.
    pub project: Option<Uuid>,
    pub client: Option<Uuid>,
    pub name: Option<String>,
    pub content_type: String,
    pub size: u64,
}

impl Grant for UploadGrant {
    const PURPOSE: &'static str = "upload";
}

/// What a client needs to upload directly.
#[derive(Debug, Clone)]
pub struct DirectUpload {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Permission to PUT one file to its staging key, bound to its content type
/// and size, with the size reserved against the quota until the upload is
/// confirmed or the grant expires.
pub async fn request_upload(
    files: &Files,
    r: &RequestContext,
    target: Result<(Owner, String), Uuid>,
    content_type: &str,
    size: u64,
) -> ApiResult<DirectUpload> {
    let db = r.db()?.as_ref();
    // The bytes are checked against the type at confirmation.
    let content_type = content_type_input(content_type)?;
    let (doc, project, client, name) = match target {
        Ok((owner, name)) => {
            let name = document_name(Some(&name), "")?;
            let (p, c) = owner.parts();
            store::documents::check_owner(db, p, c).await?;
            (Uuid::now_v7(), p, c, Some(name))
        }
        Err(doc) => {
            store::documents::by_id(db, doc).await?.ok_or(ApiError::NotFound("document"))?;
            (doc, None, None, None)
        }
    };
    quota::check_size(files, size)?;
    quota::charge(db, size).await?;
    let grant = UploadGrant { doc, ver: Uuid::now_v7(), project, client, name, content_type: content_type.clone(), size };
    let ttl = Duration::from_secs(files.storage.url_ttl_secs);
    let expires_at = Utc::now() + chrono::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(300));
    upload_reservations::reserve(db, grant.ver, size, expires_at).await?;
    let token = sign_grant(files, db.tenant(), ttl, &grant)?;
    let key = objects::staging_key(db.tenant(), grant.ver);
    let url = match files.objects.presigned_put(&key, ttl, &content_type).await.map_err(storage_failed)? {
        Some(url) => url,
        None => format!("/files/{token}"),
    };
    let headers = vec![("content-type".to_owned(), content_type), ("content-length".to_owned(), size.to_string())];
    Ok(DirectUpload { url, headers, token, expires_at })
}

/// A second confirmation, or bytes sent after the first.
pub fn already_confirmed() -> ApiError {
    ApiError::Conflict("this upload is already confirmed; request a new upload for other bytes".into())
}

fn bad_token(message: &str) -> ApiError {
    ApiError::BadUserInput { field: "uploadToken", message: message.into() }
}

/// Records a direct upload: claims the grant's reservation, copies the
/// staged object to the version's key, checks the copy (its size is the
/// granted one, its bytes match its type, its owner still exists), and
/// writes the rows. A refused copy is removed, and so is the staged object.
pub async fn confirm_upload(files: &Files, r: &RequestContext, token: &str) -> ApiResult<documents::Model> {
    let db = r.db()?.as_ref();
    let grant: UploadGrant =
        open_grant(files, db.tenant(), token).ok_or_else(|| bad_token("is not a valid, unexpired upload token of this agency"))?;
    // Claimed first, before any bytes move: of two confirmations of one grant
    // only one ever writes the version's key. A refusal below rolls the
    // claim back with the request, so the grant can be used again.
    if !upload_reservations::confirm(db, grant.ver).await? {
        return Err(match version_of_id(db, grant.ver).await? {
            Some(_) => already_confirmed(),
            None => bad_token("this upload grant has expired; request a new one"),
        });
    }
    let staging = objects::staging_key(db.tenant(), grant.ver);
    let key = objects::version_key(db.tenant(), grant.ver);
    match files.objects.copy(&staging, &key).await {
        Ok(()) => {}
        Err(StorageError::NotFound) => return Err(bad_token("nothing was uploaded for this token yet")),
        Err(e) => return Err(storage_failed(e)),
    }
    let owner = Owner::from_parts(grant.project, grant.client);
    let stored = or_discard(files, &[&key, &staging], async {
        let stored = files.objects.inspect(&key).await.map_err(storage_failed)?;
        if stored.size != grant.size {
            let message = format!("the upload has {} bytes, but {} were declared", stored.size, grant.size);
            return Err(bad_token(&message));
        }
        checked_content_type(Some(&grant.content_type), &stored.head)?;
        if let Some(owner) = owner {
            let (p, c) = owner.parts();
            store::documents::check_owner(db, p, c).await?;
        }
        Ok(stored)
    })
    .await?;
    // The bytes now live under the version's key.
    files.objects.discard(&staging).await;
    let bytes = NewBytes { version_id: grant.ver, key, content_type: &grant.content_type, stored: &stored, charge: false };
    match (grant.name, owner) {
        (Some(name), Some(owner)) => record_new(files, r, grant.doc, name, owner, bytes).await,
        _ => record_version(files, r, grant.doc, bytes).await,
    }
}
