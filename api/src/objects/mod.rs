//! Object storage through `object_store`: the local filesystem by default, any
//! S3 API (SeaweedFS, MinIO, AWS) in production.

use std::sync::Arc;

use anyhow::Context as _;
use object_store::{
    ObjectStore, aws::AmazonS3Builder, local::LocalFileSystem, path::Path,
};
use secrecy::ExposeSecret;

use crate::config::{Settings, StorageBackend};

#[derive(Debug, Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    backend: StorageBackend,
}

impl Objects {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let s = &settings.storage;
        let store: Arc<dyn ObjectStore> = match s.backend {
            StorageBackend::Local => {
                let dir = settings.local_objects_dir();
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {} (setting storage.local_dir)", dir.display()))?;
                Arc::new(LocalFileSystem::new_with_prefix(&dir)?)
            }
            StorageBackend::S3 => {
                let mut b = AmazonS3Builder::new()
                    .with_region(&s.s3_region)
                    .with_bucket_name(s.s3_bucket.clone().unwrap_or_default())
                    .with_virtual_hosted_style_request(!s.s3_path_style);
                if let Some(endpoint) = &s.s3_endpoint {
                    b = b.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
                }
                if let (Some(id), Some(secret)) = (&s.s3_access_key_id, &s.s3_secret_access_key) {
                    b = b.with_access_key_id(id).with_secret_access_key(secret.expose_secret());
                }
                Arc::new(b.build().context("configuring S3 storage (settings storage.s3_*)")?)
            }
        };
        Ok(Self { store, backend: settings.storage.backend })
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            StorageBackend::Local => "local",
            StorageBackend::S3 => "s3",
        }
    }

    /// Reachable, authorised, and the bucket exists: a listing of a prefix
    /// that holds nothing (a missing bucket fails it, a missing key would not).
    pub async fn ping(&self) -> Result<(), object_store::Error> {
        self.store.list_with_delimiter(Some(&Path::from("_aggios"))).await.map(|_| ())
    }
}
