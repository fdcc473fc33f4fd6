//! Signed links for local storage: `GET /files/{grant}` downloads a version,
//! `PUT /files/{grant}` takes a direct upload to its staging key. The grant
//! is checked on every use: signature, expiry, purpose, and the tenant of the
//! host it arrives on; a download also needs its version's row to still
//! exist, and an upload a grant not yet confirmed.

use futures::TryStreamExt as _;
use poem::{
    Body, Request, Response, handler,
    http::{StatusCode, header},
    web::{Data, Path},
};
use uuid::Uuid;

use super::{pipeline, response};
use crate::{
    error::ApiError,
    files::{self, DownloadGrant, UploadGrant},
    objects,
    state::AppState,
    store,
};

async fn tenant_of(req: &Request, state: &AppState) -> Result<Uuid, ApiError> {
    Ok(pipeline::tenant(req, state).await?.tenant.ok_or(ApiError::TenantRequired)?.id)
}

fn refused() -> ApiError {
    ApiError::Forbidden("this link is invalid, expired, or not for this agency")
}

#[handler]
pub async fn download(req: &Request, Path(grant): Path<String>, Data(state): Data<&AppState>) -> Response {
    match serve_download(req, &grant, state).await {
        Ok(resp) => resp,
        Err(e) => response::error_for(e, req),
    }
}

async fn serve_download(req: &Request, grant: &str, state: &AppState) -> Result<Response, ApiError> {
    let tenant = tenant_of(req, state).await?;
    let DownloadGrant { doc: doc_id, ver: version_id } = files::open_grant(&state.files, tenant, grant).ok_or_else(refused)?;
    let db = state.db.scoped_query(tenant);
    let found = async {
        let doc = store::documents::by_id(&db, doc_id).await?;
        let version = files::version_of_id(&db, version_id).await?;
        Ok::<_, ApiError>(doc.zip(version).filter(|(_, v)| v.document_id == doc_id))
    }
    .await;
    db.finish(true).await?;
    let (doc, version) = found?.ok_or(ApiError::NotFound("document version"))?;
    let (size, stream) = match state.objects.get_stream(&version.storage_key).await {
        Ok(found) => found,
        Err(objects::StorageError::NotFound) => return Err(ApiError::NotFound("document version")),
        Err(e) => {
            tracing::error!(error = ?anyhow::Error::from(e), "reading a document from storage");
            return Err(ApiError::Unavailable("file storage"));
        }
    };
    let body = Body::from_bytes_stream(stream.map_err(std::io::Error::other));
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, version.content_type)
        .header(header::CONTENT_LENGTH, size)
        .header(header::CONTENT_DISPOSITION, attachment(&doc.name))
        .header("x-content-type-options", "nosniff")
        .header(header::CACHE_CONTROL, "private, no-store")
        .body(body))
}

#[handler]
pub async fn upload(req: &Request, Path(grant): Path<String>, Data(state): Data<&AppState>, body: Body) -> Response {
    match take_upload(req, &grant, state, body).await {
        Ok(()) => Response::builder().status(StatusCode::NO_CONTENT).finish(),
        Err(e) => response::error_for(e, req),
    }
}

async fn take_upload(req: &Request, grant: &str, state: &AppState, body: Body) -> Result<(), ApiError> {
    let tenant = tenant_of(req, state).await?;
    let grant: UploadGrant = files::open_grant(&state.files, tenant, grant).ok_or_else(refused)?;
    if req.header("content-type").map(str::trim) != Some(grant.content_type.as_str()) {
        return Err(ApiError::BadUserInput { field: "content-type", message: format!("must be {}, as granted", grant.content_type) });
    }
    if req.header("content-length").and_then(|v| v.parse::<u64>().ok()) != Some(grant.size) {
        return Err(ApiError::PayloadTooLarge(format!("the upload must be exactly {} bytes, as granted", grant.size)));
    }
    // Confirmed bytes live under the version's key and never change; the
    // grant has done its work. (A PUT racing the confirmation only changes
    // the staging object, which the confirmation no longer reads.)
    let db = state.db.scoped(tenant);
    let reservation = store::upload_reservations::by_id(&db, grant.ver).await;
    db.finish(true).await?;
    match reservation? {
        Some(r) if r.confirmed_at.is_none() => {}
        Some(_) => return Err(files::direct::already_confirmed()),
        None => return Err(refused()),
    }
    use tokio::io::AsyncReadExt as _;
    let reader = body.into_async_read().take(grant.size);
    let key = objects::staging_key(tenant, grant.ver);
    state.objects.put_stream(&key, reader, &grant.content_type).await.map_err(|e| {
        tracing::error!(error = ?anyhow::Error::from(e), "storing a direct upload");
        ApiError::Unavailable("file storage")
    })?;
    Ok(())
}

/// `attachment` with the name percent-encoded (RFC 6266 / 5987), so no
/// character of it can break out of the header.
fn attachment(name: &str) -> String {
    use std::fmt::Write as _;
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            let _ = write!(encoded, "%{b:02X}");
        }
    }
    format!("attachment; filename*=UTF-8''{encoded}")
}
