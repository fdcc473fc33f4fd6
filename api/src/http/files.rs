//! Signed links for local storage: `GET /files/{grant}` downloads a version,
//! `PUT /files/{grant}` takes a direct upload. The grant is checked on every
//! use: signature, expiry, purpose, and the tenant of the host it arrives on;
//! a download also needs its version's row to still exist.

use futures::TryStreamExt as _;
use poem::{
    Body, Request, Response, handler,
    http::{StatusCode, header},
    web::{Data, Path},
};
use serde_json::Value;
use uuid::Uuid;

use super::graphql::error_response;
use crate::{
    error::ApiError,
    files::{self, UploadGrant},
    objects,
    startup::AppState,
    store,
};

async fn tenant_of(req: &Request, state: &AppState) -> Result<Uuid, ApiError> {
    let host = req.uri().host().map(str::to_owned).or_else(|| req.header("host").map(str::to_owned)).unwrap_or_default();
    let resolved = state.tenants.resolve(&host, req.header("x-tenant")).await?;
    Ok(resolved.tenant.ok_or(ApiError::TenantRequired)?.id)
}

fn refused() -> ApiError {
    ApiError::Forbidden("this link is invalid, expired, or not for this agency")
}

#[handler]
pub async fn download(req: &Request, Path(grant): Path<String>, Data(state): Data<&AppState>) -> Response {
    match serve_download(req, &grant, state).await {
        Ok(resp) => resp,
        Err(e) => error_response(e),
    }
}

async fn serve_download(req: &Request, grant: &str, state: &AppState) -> Result<Response, ApiError> {
    let tenant = tenant_of(req, state).await?;
    let data = state.auth.tokens.verify_grant(grant, tenant, files::DOWNLOAD).ok_or_else(refused)?;
    let id = |k: &str| data.get(k).and_then(Value::as_str).and_then(|s| s.parse::<Uuid>().ok());
    let (doc_id, version_id) = (id("doc").ok_or_else(refused)?, id("ver").ok_or_else(refused)?);
    let db = state.db.scoped(tenant);
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
        Err(e) => error_response(e),
    }
}

async fn take_upload(req: &Request, grant: &str, state: &AppState, body: Body) -> Result<(), ApiError> {
    let tenant = tenant_of(req, state).await?;
    let grant: UploadGrant = state
        .auth
        .tokens
        .verify_grant(grant, tenant, files::UPLOAD)
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(refused)?;
    if req.header("content-type").map(str::trim) != Some(grant.content_type.as_str()) {
        return Err(ApiError::BadUserInput { field: "content-type", message: format!("must be {}, as granted", grant.content_type) });
    }
    if req.header("content-length").and_then(|v| v.parse::<u64>().ok()) != Some(grant.size) {
        return Err(ApiError::PayloadTooLarge(format!("the upload must be exactly {} bytes, as granted", grant.size)));
    }
    use tokio::io::AsyncReadExt as _;
    let reader = body.into_async_read().take(grant.size);
    let key = objects::version_key(tenant, grant.ver);
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
