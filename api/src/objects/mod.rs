//! Object storage through `object_store`: the local filesystem by default, any
//! S3 API (SeaweedFS, MinIO, AWS) in production.
//!
//! Every key is built here from server-generated ids only
//! (`{tenant}/documents/{version}` for a version's bytes,
//! `{tenant}/uploads/{version}` for a direct upload on its way); nothing a
//! user typed ever reaches a key or a path.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::Context as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::{
    ObjectStore, ObjectStoreExt as _, PutPayload, WriteMultipart,
    aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey},
    local::LocalFileSystem,
    path::Path,
    signer::{Signer as _, SignedUrlOptions},
};
use secrecy::ExposeSecret;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;
use tracing::Instrument as _;

use crate::config::{Settings, StorageBackend};

mod keys;

pub use keys::{is_staging_key, staging_key, tenant_prefix, version_key};

/// Parts of a multipart upload; S3 asks at least 5 MiB of every part but the last.
pub const PART_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    /// The same store, typed, when it can presign URLs (S3).
    s3: Option<Arc<AmazonS3>>,
    backend: StorageBackend,
    /// Streaming uploads at once (`storage.max_concurrent_uploads`): each
    /// holds up to three parts in memory.
    uploads: Arc<tokio::sync::Semaphore>,
    /// Keys whose removal failed or had to wait, removed by `retry_discards`.
    pending: Arc<Mutex<BTreeSet<String>>>,
}

/// How long an upload waits for a slot before it is refused as busy.
const UPLOAD_SLOT_WAIT: Duration = Duration::from_secs(5);

/// At most this many keys wait for a retried removal; past that, the
/// sweeper's full pass finds what is left.
const MAX_PENDING: usize = 10_000;

/// A stored object's facts, as computed while its bytes went by.
#[derive(Debug, Clone)]
pub struct Stored {
    pub size: u64,
    pub sha256: String,
    /// The first bytes, for content sniffing.
    pub head: Bytes,
}

/// One object found in the store.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub last_modified: DateTime<Utc>,
}

/// Storage failed: unreachable, refused, or the object is not there.
#[derive(Debug)]
pub enum StorageError {
    NotFound,
    Io(std::io::Error),
    Store(object_store::Error),
    /// Every upload slot stayed taken (`storage.max_concurrent_uploads`).
    Busy,
}

impl From<object_store::Error> for StorageError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Self::NotFound,
            other => Self::Store(other),
        }
    }
}

impl From<StorageError> for anyhow::Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => anyhow::anyhow!("object not found"),
            StorageError::Io(e) => anyhow::Error::new(e).context("reading the upload"),
            StorageError::Store(e) => anyhow::Error::new(e).context("object storage"),
            StorageError::Busy => anyhow::anyhow!("every upload slot is taken (setting storage.max_concurrent_uploads)"),
        }
    }
}

impl Objects {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let s = &settings.storage;
        match s.backend {
            StorageBackend::Local => {
                let dir = settings.local_objects_dir();
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {} (setting storage.local_dir)", dir.display()))?;
                let store = Arc::new(LocalFileSystem::new_with_prefix(&dir)?);
                Ok(Self { store, s3: None, backend: s.backend, uploads: upload_slots(s.max_concurrent_uploads), pending: Arc::default() })
            }
            StorageBackend::S3 => {
                // A few quick retries, then a clear error: an API request
                // should not hang for the library's default three minutes.
                let retry = object_store::RetryConfig {
                    max_retries: 3,
                    retry_timeout: Duration::from_secs(15),
                    ..Default::default()
                };
                // A storage server that does not take the connection is
                // down: it is not waited on for long.
                let client = object_store::ClientOptions::new().with_connect_timeout(Duration::from_secs(2));
                let mut b = AmazonS3Builder::new()
                    .with_retry(retry)
                    .with_client_options(client)
                    .with_region(&s.s3_region)
                    .with_bucket_name(s.s3_bucket.clone().unwrap_or_default())
                    .with_virtual_hosted_style_request(!s.s3_path_style);
                if let Some(endpoint) = &s.s3_endpoint {
                    b = b.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
                }
                if let (Some(id), Some(secret)) = (&s.s3_access_key_id, &s.s3_secret_access_key) {
                    b = b.with_access_key_id(id).with_secret_access_key(secret.expose_secret());
                }
                match (s.s3_server_side_encryption.as_deref(), &s.s3_kms_key_id) {
                    (Some("aws:kms"), Some(key)) => b = b.with_sse_kms_encryption(key),
                    (Some(kind), _) => {
                        let key: AmazonS3ConfigKey = "aws_server_side_encryption".parse()?;
                        b = b.with_config(key, kind);
                    }
                    (None, _) => {}
                }
                let s3 = Arc::new(b.build().context("configuring S3 storage (settings storage.s3_*)")?);
                Ok(Self { store: s3.clone(), s3: Some(s3), backend: s.backend, uploads: upload_slots(s.max_concurrent_uploads), pending: Arc::default() })
            }
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            StorageBackend::Local => "local",
            StorageBackend::S3 => "s3",
        }
    }

    /// Whether clients get presigned URLs straight to the store (S3), or
    /// links served by the API (local files).
    pub fn presigns(&self) -> bool {
        self.s3.is_some()
    }

    /// Runs one call to the store in its span, counted and timed in the
    /// metrics; both name it as S3 does (`PutObject`, `ListObjectsV2`, ...).
    async fn observed<T, E>(&self, operation: &'static str, key: &str, call: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        let started = std::time::Instant::now();
        // Boxed: a storage call's future (a streamed upload's above all) is
        // large, and every resolver that stores would otherwise carry it in
        // its own state, and on the stack, in a debug build.
        let result = Box::pin(call).instrument(crate::telemetry::storage_call(self.s3.is_some(), operation, key)).await;
        crate::metrics::storage_call(operation, result.is_ok(), started.elapsed());
        result
    }

    /// Reachable, authorised, and the bucket exists: a listing of a prefix
    /// that holds nothing (a missing bucket fails it, a missing key would not).
    pub async fn ping(&self) -> Result<(), object_store::Error> {
        self.observed("ListObjectsV2", "_aggios", self.store.list_with_delimiter(Some(&Path::from("_aggios")))).await.map(|_| ())
    }

    /// Streams `reader` to `key`, hashing as it goes: one PUT for a file of
    /// one part, a multipart upload (aborted on failure) for larger ones.
    /// Memory holds at most a few parts whatever the size.
    pub async fn put_stream(
        &self,
        key: &str,
        reader: impl tokio::io::AsyncRead + Unpin,
        content_type: &str,
    ) -> Result<Stored, StorageError> {
        self.observed("PutObject", key, self.put_stream_unobserved(key, reader, content_type)).await
    }

    async fn put_stream_unobserved(
        &self,
        key: &str,
        mut reader: impl tokio::io::AsyncRead + Unpin,
        content_type: &str,
    ) -> Result<Stored, StorageError> {
        let path = Path::from(key);
        // S3 keeps the content type with the object; the local store has no
        // place for attributes (the rows keep it for both).
        let mut attrs = object_store::Attributes::new();
        if self.s3.is_some() {
            attrs.insert(object_store::Attribute::ContentType, content_type.to_owned().into());
        }
        let _slot = tokio::time::timeout(UPLOAD_SLOT_WAIT, self.uploads.clone().acquire_owned())
            .await
            .map_err(|_| StorageError::Busy)?
            .map_err(|_| StorageError::Busy)?;
        let mut hasher = Sha256::new();
        let first = read_part(&mut reader).await?;
        hasher.update(&first);
        // Its own copy: a slice would keep the whole part alive as long as
        // the head is kept (until the request's resolvers are done).
        let head = Bytes::copy_from_slice(&first[..first.len().min(SNIFF_BYTES)]);
        if first.len() < PART_BYTES {
            let size = first.len() as u64;
            let opts = object_store::PutOptions { attributes: attrs, ..Default::default() };
            self.store.put_opts(&path, PutPayload::from_bytes(first), opts).await?;
            return Ok(Stored { size, sha256: hex(&hasher.finalize()), head });
        }
        let opts = object_store::PutMultipartOptions { attributes: attrs, ..Default::default() };
        let upload = self.store.put_multipart_opts(&path, opts).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut size = first.len() as u64;
        writer.put(first);
        let result: Result<(), StorageError> = async {
            loop {
                writer.wait_for_capacity(2).await?;
                let part = read_part(&mut reader).await?;
                if part.is_empty() {
                    return Ok(());
                }
                hasher.update(&part);
                size += part.len() as u64;
                writer.put(part);
            }
        }
        .await;
        match result {
            Ok(()) => {
                writer.finish().await?;
                Ok(Stored { size, sha256: hex(&hasher.finalize()), head })
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, key, "aborting a failed multipart upload");
                }
                Err(e)
            }
        }
    }

    /// The object's bytes as a stream, and its size.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<(u64, futures::stream::BoxStream<'static, Result<Bytes, object_store::Error>>), StorageError> {
        let got = self.observed("GetObject", key, self.store.get(&Path::from(key))).await?;
        let size = got.meta.size;
        Ok((size, got.into_stream().boxed()))
    }

    /// The size, SHA-256 and first bytes of an object, read once (for
    /// confirming a direct upload).
    pub async fn inspect(&self, key: &str) -> Result<Stored, StorageError> {
        let (_, mut stream) = self.get_stream(key).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut head = Vec::new();
        while let Some(chunk) = stream.try_next().await? {
            if head.len() < SNIFF_BYTES {
                head.extend_from_slice(&chunk[..chunk.len().min(SNIFF_BYTES - head.len())]);
            }
            hasher.update(&chunk);
            size += chunk.len() as u64;
        }
        Ok(Stored { size, sha256: hex(&hasher.finalize()), head: Bytes::from(head) })
    }

    /// Removes an object; one already gone is fine.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        // A key already gone is an answer, not a failure of the store.
        let deleted = async {
            match self.store.delete(&Path::from(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(StorageError::from(e)),
            }
        };
        self.observed("DeleteObject", key, deleted).await
    }

    /// Removes an object now or, if storage fails, on a later
    /// `retry_discards`: for bytes nothing points at.
    pub async fn discard(&self, key: &str) {
        if let Err(e) = self.delete(key).await {
            tracing::warn!(error = ?anyhow::Error::from(e), key, "removing unreferenced bytes failed; retrying later");
            self.discard_later([key.to_owned()]);
        }
    }

    /// Queues keys for the next `retry_discards`, without waiting (for
    /// places that cannot await, such as `Drop`).
    pub fn discard_later(&self, keys: impl IntoIterator<Item = String>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for key in keys {
            if pending.len() >= MAX_PENDING {
                tracing::warn!(key, "too many removals waiting; the full sweep will find this one");
                continue;
            }
            pending.insert(key);
        }
    }

    /// Removes what `discard` and `discard_later` left; keys storage still
    /// refuses wait for the next call. Returns how many were removed.
    pub async fn retry_discards(&self) -> usize {
        let keys = std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let mut removed = 0;
        let mut failed = Vec::new();
        for key in keys {
            match self.delete(&key).await {
                Ok(()) => removed += 1,
                Err(_) => failed.push(key),
            }
        }
        self.discard_later(failed);
        removed
    }

    /// Copies an object within the store (server-side on S3).
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        Ok(self.observed("CopyObject", to, self.store.copy(&Path::from(from), &Path::from(to))).await?)
    }

    /// Everything under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StorageError> {
        let prefix = Path::from(prefix);
        let found: Vec<_> = self.observed("ListObjectsV2", prefix.as_ref(), self.store.list(Some(&prefix)).try_collect()).await?;
        Ok(found.into_iter().map(|m| Listed { key: m.location.to_string(), last_modified: m.last_modified }).collect())
    }

    /// A presigned GET (S3 only).
    pub async fn presigned_get(&self, key: &str, ttl: Duration) -> Result<Option<String>, StorageError> {
        let Some(s3) = &self.s3 else { return Ok(None) };
        let url = s3.signed_url(poem::http::Method::GET, &Path::from(key), ttl).await?;
        Ok(Some(url.to_string()))
    }

    /// A presigned PUT bound to the content type (S3 only): the store refuses
    /// another. SigV4 query signing cannot bind the length (object_store
    /// reserves `content-length`), so the size is checked at confirmation.
    pub async fn presigned_put(
        &self,
        key: &str,
        ttl: Duration,
        content_type: &str,
    ) -> Result<Option<String>, StorageError> {
        use poem::http::{HeaderValue, header};
        let Some(s3) = &self.s3 else { return Ok(None) };
        let ct = HeaderValue::from_str(content_type)
            .map_err(|e| StorageError::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        let opts = SignedUrlOptions::new().with_signed_header(header::CONTENT_TYPE, ct);
        let url = s3.signed_url_opts(poem::http::Method::PUT, &Path::from(key), ttl, &opts).await?;
        Ok(Some(url.to_string()))
    }
}

fn upload_slots(n: usize) -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(n.max(1)))
}

/// How many leading bytes content sniffing looks at.
pub const SNIFF_BYTES: usize = 8192;

/// Reads up to one part (less only at the end of the input). The buffer
/// grows with what arrives: a 2 KiB file costs kilobytes, not a part.
async fn read_part(reader: &mut (impl tokio::io::AsyncRead + Unpin)) -> Result<Bytes, StorageError> {
    let mut buf = Vec::with_capacity(64 * 1024);
    while buf.len() < PART_BYTES {
        let n = (&mut *reader)
            .take((PART_BYTES - buf.len()) as u64)
            .read_to_end(&mut buf)
            .await
            .map_err(StorageError::Io)?;
        if n == 0 {
            break;
        }
    }
    Ok(Bytes::from(buf))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
