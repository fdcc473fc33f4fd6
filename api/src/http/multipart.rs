//! The GraphQL multipart request spec, with files streamed straight to
//! object storage while the body arrives: no file is held in memory or
//! spooled to disk. `operations` and `map` come first (as the spec orders
//! them); each file part then goes to a fresh key of its own, and the
//! resolvers receive what was stored (`Staged`), not bytes.
//!
//! A file whose request then fails leaves bytes no row points at: the
//! handler removes them at once, and the sweeper catches any it could not.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use async_graphql::UploadValue;
use futures::TryStreamExt as _;
use uuid::Uuid;

use crate::{
    config::StorageSettings,
    error::ApiError,
    files::{Staged, StagedUploads},
    objects::{self, Objects, StorageError},
};

/// Larger `operations` or `map` parts are refused.
const MAX_JSON_PART: u64 = 1024 * 1024;

pub async fn read(
    content_type: &str,
    body: poem::Body,
    limits: &StorageSettings,
    objects: &Objects,
    tenant: Uuid,
) -> Result<async_graphql::Request, ApiError> {
    let mut staged: Vec<Staged> = Vec::new();
    let result = read_inner(content_type, body, limits, objects, tenant, &mut staged).await;
    if result.is_err() {
        for s in &staged {
            if let Err(e) = objects.delete(&s.key).await {
                tracing::warn!(error = ?anyhow::Error::from(e), key = %s.key, "removing an upload of a failed request; the sweeper will");
            }
        }
    }
    result
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadUserInput { field: "request", message: message.into() }
}

async fn read_inner(
    content_type: &str,
    body: poem::Body,
    limits: &StorageSettings,
    objects: &Objects,
    tenant: Uuid,
    staged: &mut Vec<Staged>,
) -> Result<async_graphql::Request, ApiError> {
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
    let mut by_upload: Vec<Staged> = Vec::new();
    while let Some(field) = parts.next_field().await.map_err(multipart_err)? {
        match field.name() {
            Some("operations") => {
                let bytes = field.bytes().await.map_err(multipart_err)?;
                request = Some(serde_json::from_slice(&bytes).map_err(|e| bad(format!("`operations` is not one GraphQL request: {e}")))?);
            }
            Some("map") => {
                let bytes = field.bytes().await.map_err(multipart_err)?;
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
                if files > limits.max_files_per_request {
                    return Err(ApiError::PayloadTooLarge(format!("more than {} files in one request", limits.max_files_per_request)));
                }
                let filename = field.file_name().unwrap_or_default().to_owned();
                let declared_type = field.content_type().map(ToString::to_string);
                let version_id = Uuid::now_v7();
                let key = objects::version_key(tenant, version_id);
                // The bytes are checked against the declared type by the
                // resolver; a refused upload is removed there.
                let over = Arc::new(AtomicBool::new(false));
                let flag = over.clone();
                let reader = tokio_util::io::StreamReader::new(field.map_err(move |e| {
                    if matches!(e, multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. }) {
                        flag.store(true, Ordering::Relaxed);
                    }
                    std::io::Error::other(e)
                }));
                let storage_type = declared_type
                    .as_deref()
                    .and_then(|t| crate::store::validate::content_type(t).ok())
                    .unwrap_or_else(|| "application/octet-stream".to_owned());
                let stored = match objects.put_stream(&key, reader, &storage_type).await {
                    Ok(s) => s,
                    Err(StorageError::Io(_)) if over.load(Ordering::Relaxed) => {
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
                let one = Staged { key, version_id, filename: filename.clone(), declared_type: declared_type.clone(), stored };
                staged.push(one.clone());
                for path in paths {
                    let before = req.uploads.len();
                    req.set_upload(
                        &path,
                        UploadValue { filename: filename.clone(), content_type: declared_type.clone(), content: bytes::Bytes::new() },
                    );
                    if req.uploads.len() > before {
                        by_upload.push(one.clone());
                    }
                }
            }
            None => {}
        }
    }
    let request = request.ok_or_else(|| bad("the multipart body has no `operations` part"))?;
    Ok(request.data(StagedUploads(by_upload)))
}
