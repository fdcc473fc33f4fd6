//! The GraphQL multipart request spec, with files streamed straight to
//! object storage while the body arrives: no file is held in memory or
//! spooled to disk. `operations` and `map` come first (as the spec orders
//! them); each file part then goes to a fresh key of its own, and the
//! resolvers receive what was stored (`Staged`), not bytes.
//!
//! A request cannot stream more file bytes than its agency has quota left:
//! a declared length past it is refused before any file is stored, and the
//! bytes are counted as they arrive. Every stored file is tracked in the
//! request's `StagedUploads`, which removes what no committed row points at
//! once the request ends; a request that fails here removes all at once.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use async_graphql::UploadValue;
use futures::StreamExt as _;
use uuid::Uuid;

use crate::{
    error::ApiError,
    files::{Staged, StagedUploads, quota},
    objects::{self, StorageError},
    state::AppState,
    request::RequestContext,
};

/// Larger `operations` or `map` parts are refused.
const MAX_JSON_PART: u64 = 1024 * 1024;

/// What a body may hold besides `operations`, `map` and file bytes: the
/// multipart framing and part headers. Once the two JSON parts are read, a
/// declared length that leaves more file bytes than the quota room even
/// after this much framing is refused before any file is stored (parts the
/// map does not name count as file bytes there; the spec has none). The
/// count while streaming is exact.
const FRAMING_ALLOWANCE: u64 = 64 * 1024;

pub async fn read(
    content_type: &str,
    declared: Option<u64>,
    body: poem::Body,
    state: &AppState,
    ctx: &RequestContext,
    tenant: Uuid,
) -> Result<async_graphql::Request, ApiError> {
    let staged = ctx.extension_or_insert_with(|| StagedUploads::new(state.objects.clone()));
    let result = read_inner(content_type, declared, body, state, tenant, &staged).await;
    if result.is_err() {
        staged.discard_all().await;
    }
    result
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadUserInput { field: "request", message: message.into() }
}

/// The agency's quota room: (quota, used, what is left), read in a
/// transaction of its own so none stays open while the files move.
async fn room(state: &AppState, tenant: Uuid) -> Result<(i64, i64, u64), ApiError> {
    let db = state.db.scoped(tenant);
    let usage = quota::usage(&db).await;
    db.finish(true).await.map_err(ApiError::from)?;
    let (quota, used) = usage?;
    Ok((quota, used, u64::try_from(quota.saturating_sub(used)).unwrap_or(0)))
}

async fn read_inner(
    content_type: &str,
    declared: Option<u64>,
    body: poem::Body,
    state: &AppState,
    tenant: Uuid,
    staged: &StagedUploads,
) -> Result<async_graphql::Request, ApiError> {
    let limits = &state.settings.storage;
    let (quota, used, left) = room(state, tenant).await?;
    let over_quota = |needed: u64| ApiError::QuotaExceeded { quota, used, needed: i64::try_from(needed).unwrap_or(i64::MAX) };
    let boundary = multer::parse_boundary(content_type).map_err(|e| bad(format!("not a multipart body: {e}")))?;
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(limits.max_request_bytes)
            .per_field(limits.max_file_bytes)
            .for_field("operations", MAX_JSON_PART)
            .for_field("map", MAX_JSON_PART),
    );
    let mut parts = multer::Multipart::with_constraints(body.into_bytes_stream(), boundary, constraints);
    let too_large = |e: &multer::Error| match e {
        multer::Error::StreamSizeExceeded { .. } => {
            Some(ApiError::PayloadTooLarge(format!("the request is larger than the limit of {} bytes", limits.max_request_bytes)))
        }
        multer::Error::FieldSizeExceeded { .. } => {
            Some(ApiError::PayloadTooLarge(format!("a file is larger than the limit of {} bytes", limits.max_file_bytes)))
        }
        _ => None,
    };
    let multipart_err = |e: multer::Error| too_large(&e).unwrap_or_else(|| bad(format!("malformed multipart body: {e}")));

    let mut request: Option<async_graphql::Request> = None;
    let mut map: Option<HashMap<String, Vec<String>>> = None;
    let mut files = 0usize;
    // Bytes of `operations` and `map`, to tell file bytes in a declared length.
    let mut json_bytes = 0u64;
    // File bytes of the whole request so far, against the quota room.
    let streamed = Arc::new(AtomicU64::new(0));
    while let Some(field) = parts.next_field().await.map_err(multipart_err)? {
        match field.name() {
            Some("operations") => {
                let bytes = field.bytes().await.map_err(multipart_err)?;
                json_bytes += bytes.len() as u64;
                request = Some(serde_json::from_slice(&bytes).map_err(|e| bad(format!("`operations` is not one GraphQL request: {e}")))?);
            }
            Some("map") => {
                let bytes = field.bytes().await.map_err(multipart_err)?;
                json_bytes += bytes.len() as u64;
                map = Some(serde_json::from_slice(&bytes).map_err(|e| bad(format!("`map` is not a JSON object of paths: {e}")))?);
            }
            Some(name) => {
                let (Some(req), Some(map)) = (request.as_mut(), map.as_ref()) else {
                    return Err(bad("`operations` and `map` must come before the files"));
                };
                let Some(paths) = map.get(name).cloned() else {
                    continue; // a part the map does not name is ignored
                };
                files += 1;
                if files == 1
                    && let Some(least) = declared.map(|n| n.saturating_sub(json_bytes + FRAMING_ALLOWANCE)).filter(|n| *n > left)
                {
                    return Err(over_quota(least));
                }
                if files > limits.max_files_per_request {
                    return Err(ApiError::PayloadTooLarge(format!("more than {} files in one request", limits.max_files_per_request)));
                }
                let filename = field.file_name().unwrap_or_default().to_owned();
                let declared_type = field.content_type().map(ToString::to_string);
                let version_id = Uuid::now_v7();
                let key = objects::version_key(tenant, version_id);
                // The bytes are checked against the declared type by the
                // resolver; a refused upload is removed there.
                let too_big = Arc::new(AtomicBool::new(false));
                let past_quota = Arc::new(AtomicBool::new(false));
                let (big, past, count) = (too_big.clone(), past_quota.clone(), streamed.clone());
                let chunks = field.map(move |chunk| match chunk {
                    Ok(chunk) => {
                        let total = count.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
                        if total > left {
                            past.store(true, Ordering::Relaxed);
                            return Err(std::io::Error::other("past the storage quota"));
                        }
                        Ok(chunk)
                    }
                    Err(e) => {
                        if matches!(e, multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. }) {
                            big.store(true, Ordering::Relaxed);
                        }
                        Err(std::io::Error::other(e))
                    }
                });
                let reader = tokio_util::io::StreamReader::new(chunks);
                let storage_type = declared_type
                    .as_deref()
                    .and_then(|t| crate::store::validate::content_type(t).ok())
                    .unwrap_or_else(|| "application/octet-stream".to_owned());
                let stored = match state.objects.put_stream(&key, reader, &storage_type).await {
                    Ok(s) => s,
                    Err(StorageError::Io(_)) if past_quota.load(Ordering::Relaxed) => {
                        return Err(over_quota(streamed.load(Ordering::Relaxed)));
                    }
                    Err(StorageError::Io(_)) if too_big.load(Ordering::Relaxed) => {
                        return Err(ApiError::PayloadTooLarge(format!(
                            "a file is larger than the limit of {} bytes, or the request than {}",
                            limits.max_file_bytes, limits.max_request_bytes
                        )));
                    }
                    Err(StorageError::Io(e)) => return Err(bad(format!("the upload was cut short: {e}"))),
                    Err(e) => {
                        tracing::error!(error = ?anyhow::Error::from(e), "streaming an upload to storage");
                        return Err(ApiError::Unavailable("file storage"));
                    }
                };
                let file = staged.stored(Staged { key, version_id, filename: filename.clone(), declared_type: declared_type.clone(), stored });
                for path in paths {
                    let before = req.uploads.len();
                    req.set_upload(
                        &path,
                        UploadValue { filename: filename.clone(), content_type: declared_type.clone(), content: bytes::Bytes::new() },
                    );
                    if req.uploads.len() > before {
                        staged.named(file);
                    }
                }
            }
            None => {}
        }
    }
    request.ok_or_else(|| bad("the multipart body has no `operations` part"))
}
