//! Documents as files (SPEC §6): uploads streamed to object storage, versions,
//! quotas, download links, direct uploads, and the sweeper.
//!
//! Consistency rests on one order: bytes are stored first, under a fresh key
//! built from ids; the rows that point at them are written in the request's
//! transaction. A row therefore never exists without its bytes. Bytes no
//! committed row points at are removed when the request ends
//! (`after_request`), or failing that by the sweeper.

mod changes;
pub mod direct;
pub mod links;
pub mod quota;
pub mod staged;
pub mod sweep;

/// What the file service works with: the database, object storage, the
/// storage settings, and the signing keys of its grants. Cheap to clone.
#[derive(Clone)]
pub struct Files {
    pub db: Database,
    pub objects: Objects,
    pub storage: std::sync::Arc<StorageSettings>,
    pub tokens: Tokens,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files").field("storage", &self.storage).finish_non_exhaustive()
    }
}

use std::time::Duration;

use chrono::Utc;
use entity::{document_versions, documents};
use sea_orm::{ActiveValue::Set, ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _};
use serde_json::json;
use uuid::Uuid;

pub use self::{
    changes::announce_document,
    direct::{DirectUpload, UploadGrant, confirm_upload, request_upload},
    links::{DownloadGrant, DownloadLink, download_link},
    staged::{Staged, StagedUploads},
};
use crate::{
    auth::tokens::Tokens,
    config::StorageSettings,
    error::{ApiError, ApiResult},
    events::ChangeKind,
    objects::{self, Objects, StorageError},
    request::RequestContext,
    store::{self, Database, TenantDb, audit::Event, validate},
};

/// What a document is attached to.
#[derive(Debug, Clone, Copy)]
pub enum Owner {
    Project(Uuid),
    Client(Uuid),
}

impl Owner {
    /// (project, client), exactly one of them set.
    fn parts(self) -> (Option<Uuid>, Option<Uuid>) {
        match self {
            Self::Project(p) => (Some(p), None),
            Self::Client(c) => (None, Some(c)),
        }
    }

    fn from_parts(project: Option<Uuid>, client: Option<Uuid>) -> Option<Self> {
        match (project, client) {
            (Some(p), _) => Some(Self::Project(p)),
            (None, Some(c)) => Some(Self::Client(c)),
            (None, None) => None,
        }
    }

    /// What is not found when the owner is gone.
    fn what(self) -> &'static str {
        match self {
            Self::Project(_) => "project",
            Self::Client(_) => "client",
        }
    }
}

fn storage_failed(e: StorageError) -> ApiError {
    tracing::error!(error = ?anyhow::Error::from(e), "object storage failed");
    ApiError::Unavailable("file storage")
}

/// The content type to record: the declared one, checked against what the
/// bytes are. A declared type the sniffer knows must match the bytes; bytes
/// the sniffer recognises must match a declared type (or fill in
/// `application/octet-stream`).
pub fn checked_content_type(declared: Option<&str>, head: &[u8]) -> ApiResult<String> {
    let declared = match declared.map(str::trim) {
        None | Some("") => "application/octet-stream".to_owned(),
        Some(d) => content_type_input(d)?,
    };
    let essence = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let sniffed = infer::get(head).map(|t| t.mime_type());
    match sniffed {
        Some(found) if essence == "application/octet-stream" => Ok(found.to_owned()),
        Some(found) if found != essence => Err(ApiError::BadUserInput {
            field: "contentType",
            message: format!("declared as {essence}, but the bytes are {found}"),
        }),
        None if essence != "application/octet-stream" && infer::is_mime_supported(&essence) => Err(ApiError::BadUserInput {
            field: "contentType",
            message: format!("declared as {essence}, but the bytes are not"),
        }),
        _ => Ok(declared),
    }
}

/// A declared content type, well-formed, refused as the `contentType` field.
fn content_type_input(value: &str) -> ApiResult<String> {
    validate::content_type(value).map_err(|e| match e {
        ApiError::BadUserInput { message, .. } => ApiError::BadUserInput { field: "contentType", message },
        other => other,
    })
}

/// The name to record: the caller's, or the uploaded file's. It is only ever
/// stored as data; keys are built from ids.
fn document_name(name: Option<&str>, filename: &str) -> ApiResult<String> {
    let n = name.filter(|n| !n.trim().is_empty()).unwrap_or(filename);
    validate::name("name", n, 255)
}

/// Runs `checks` on bytes already stored at `keys`; when they refuse, the
/// bytes are removed at once (or else on a retry, or by the sweeper).
async fn or_discard<T>(files: &Files, keys: &[&str], checks: impl Future<Output = ApiResult<T>>) -> ApiResult<T> {
    let result = checks.await;
    if result.is_err() {
        for key in keys {
            files.objects.discard(key).await;
        }
    }
    result
}

/// Bytes stored under `key`, about to become version `version_id`.
struct NewBytes<'a> {
    version_id: Uuid,
    key: String,
    content_type: &'a str,
    stored: &'a objects::Stored,
    /// Whether the size is still to be taken from the quota; a direct
    /// upload's was reserved with its grant.
    charge: bool,
}

impl NewBytes<'_> {
    fn size(&self) -> ApiResult<i64> {
        i64::try_from(self.stored.size).map_err(ApiError::internal)
    }

    fn row(&self, tenant: Uuid, document_id: Uuid, version: i32, actor: Option<Uuid>) -> ApiResult<document_versions::ActiveModel> {
        Ok(document_versions::ActiveModel {
            id: Set(self.version_id),
            tenant_id: Set(tenant),
            document_id: Set(document_id),
            version: Set(version),
            storage_key: Set(self.key.clone()),
            content_type: Set(self.content_type.to_owned()),
            size_bytes: Set(self.size()?),
            checksum_sha256: Set(self.stored.sha256.clone()),
            uploaded_by: Set(actor),
            created_at: Set(Utc::now()),
        })
    }

    async fn charge(&self, db: &TenantDb) -> ApiResult<()> {
        if self.charge { quota::charge(db, self.stored.size).await } else { Ok(()) }
    }
}

/// The file of an `Upload` argument, as the HTTP layer streamed it to
/// storage, taken for the one field that records it.
pub fn incoming(r: &RequestContext, upload: usize) -> ApiResult<Staged> {
    r.extension::<StagedUploads>()
        .ok_or_else(|| ApiError::BadUserInput { field: "file", message: "no file was sent for this field (multipart request spec)".into() })?
        .take(upload)
}

/// A new document from an uploaded (staged) file.
pub async fn upload_document(
    files: &Files,
    r: &RequestContext,
    owner: Owner,
    name: Option<&str>,
    staged: Staged,
) -> ApiResult<documents::Model> {
    let db = r.db()?.as_ref();
    let (name, content_type) = or_discard(files, &[&staged.key], async {
        let name = document_name(name, &staged.filename)?;
        let content_type = checked_content_type(staged.declared_type.as_deref(), &staged.stored.head)?;
        let (p, c) = owner.parts();
        store::documents::check_owner(db, p, c).await?;
        quota::precheck(files, db, staged.stored.size).await?;
        Ok((name, content_type))
    })
    .await?;
    let bytes = NewBytes { version_id: staged.version_id, key: staged.key, content_type: &content_type, stored: &staged.stored, charge: true };
    record_new(files, r, Uuid::now_v7(), name, owner, bytes).await
}

/// The rows of a new document whose bytes are stored. Should the quota
/// refuse here, or the owner be gone by now, the bytes are removed at once.
async fn record_new(
    files: &Files,
    r: &RequestContext,
    document_id: Uuid,
    name: String,
    owner: Owner,
    bytes: NewBytes<'_>,
) -> ApiResult<documents::Model> {
    let db = r.db()?.as_ref();
    let actor = r.principal.actor().0;
    let (project, client) = owner.parts();
    let doc = or_discard(files, &[&bytes.key], async {
        bytes.charge(db).await?;
        let now = Utc::now();
        let doc = documents::ActiveModel {
            id: Set(document_id),
            tenant_id: Set(db.tenant()),
            project_id: Set(project),
            client_id: Set(client),
            name: Set(name),
            content_type: Set(bytes.content_type.to_owned()),
            size_bytes: Set(bytes.size()?),
            checksum_sha256: Set(bytes.stored.sha256.clone()),
            current_version: Set(1),
            uploaded_by: Set(actor),
            created_by: Set(actor),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let doc = store::documents::insert(db, doc, owner.what()).await?;
        store::documents::insert_version(db, bytes.row(db.tenant(), document_id, 1, actor)?).await?;
        Ok(doc)
    })
    .await?;
    r.audit(Event {
        action: "document.upload",
        target_type: "document",
        target_id: Some(doc.id),
        changes: Some(json!({
            "name": doc.name, "projectId": doc.project_id, "clientId": doc.client_id,
            "version": 1, "sizeBytes": doc.size_bytes, "contentType": doc.content_type, "checksumSha256": doc.checksum_sha256,
        })),
    })
    .await?;
    announce_document(r, &doc, ChangeKind::Created, Some(1)).await?;
    Ok(doc)
}

/// A new version of an existing document from an uploaded (staged) file.
pub async fn upload_version(files: &Files, r: &RequestContext, document_id: Uuid, staged: Staged) -> ApiResult<documents::Model> {
    let db = r.db()?.as_ref();
    let content_type = or_discard(files, &[&staged.key], async {
        let content_type = checked_content_type(staged.declared_type.as_deref(), &staged.stored.head)?;
        quota::precheck(files, db, staged.stored.size).await?;
        Ok(content_type)
    })
    .await?;
    let bytes = NewBytes { version_id: staged.version_id, key: staged.key, content_type: &content_type, stored: &staged.stored, charge: true };
    record_version(files, r, document_id, bytes).await
}

async fn record_version(files: &Files, r: &RequestContext, document_id: Uuid, bytes: NewBytes<'_>) -> ApiResult<documents::Model> {
    let db = r.db()?.as_ref();
    let actor = r.principal.actor().0;
    let (version, current) = or_discard(files, &[&bytes.key], async {
        // Locks the document row, so concurrent versions number one after another.
        let current = store::documents::by_id_for_update(db, document_id).await?.ok_or(ApiError::NotFound("document"))?;
        bytes.charge(db).await?;
        let version = current.current_version + 1;
        store::documents::insert_version(db, bytes.row(db.tenant(), document_id, version, actor)?).await?;
        Ok((version, current))
    })
    .await?;
    let mut model: documents::ActiveModel = current.into();
    model.current_version = Set(version);
    model.content_type = Set(bytes.content_type.to_owned());
    model.size_bytes = Set(bytes.size()?);
    model.checksum_sha256 = Set(bytes.stored.sha256.clone());
    model.uploaded_by = Set(actor);
    let doc = store::documents::update(db, model).await?;
    r.audit(Event {
        action: "document.version",
        target_type: "document",
        target_id: Some(doc.id),
        changes: Some(json!({
            "version": version, "sizeBytes": doc.size_bytes, "contentType": doc.content_type, "checksumSha256": doc.checksum_sha256,
        })),
    })
    .await?;
    announce_document(r, &doc, ChangeKind::VersionAdded, Some(version)).await?;
    Ok(doc)
}

/// One version of a document (the current one when `version` is `None`).
pub async fn version_of(db: &TenantDb, document_id: Uuid, version: Option<i32>) -> ApiResult<document_versions::Model> {
    let mut q = document_versions::Entity::find()
        .filter(document_versions::Column::TenantId.eq(db.tenant()))
        .filter(document_versions::Column::DocumentId.eq(document_id));
    q = match version {
        Some(v) => q.filter(document_versions::Column::Version.eq(v)),
        None => q.order_by_desc(document_versions::Column::Version),
    };
    q.one(db).await?.ok_or(ApiError::NotFound("document version"))
}

/// The versions of several documents, by document then version.
pub async fn versions_of_documents(db: &TenantDb, documents: &[Uuid]) -> Result<Vec<document_versions::Model>, sea_orm::DbErr> {
    document_versions::Entity::find()
        .filter(document_versions::Column::TenantId.eq(db.tenant()))
        .filter(document_versions::Column::DocumentId.is_in(documents.iter().copied()))
        .order_by_asc(document_versions::Column::DocumentId)
        .order_by_asc(document_versions::Column::Version)
        .all(db)
        .await
}

pub async fn versions_of(db: &TenantDb, document_id: Uuid) -> ApiResult<Vec<document_versions::Model>> {
    Ok(document_versions::Entity::find()
        .filter(document_versions::Column::TenantId.eq(db.tenant()))
        .filter(document_versions::Column::DocumentId.eq(document_id))
        .order_by_asc(document_versions::Column::Version)
        .all(db)
        .await?)
}

/// What a signed file grant carries; `PURPOSE` keeps one kind from being
/// used as another.
pub trait Grant: serde::Serialize + serde::de::DeserializeOwned {
    const PURPOSE: &'static str;
}

pub fn sign_grant<G: Grant>(files: &Files, tenant: Uuid, ttl: Duration, grant: &G) -> ApiResult<String> {
    let data = serde_json::to_value(grant).map_err(ApiError::internal)?;
    files.tokens.sign_grant(tenant, G::PURPOSE, ttl, data)
}

/// The grant, if `token` is a valid, unexpired one of this kind for `tenant`.
pub fn open_grant<G: Grant>(files: &Files, tenant: Uuid, token: &str) -> Option<G> {
    let data = files.tokens.verify_grant(token, tenant, G::PURPOSE)?;
    serde_json::from_value(data).ok()
}

/// Deletes a document and all its versions. Their bytes become unreachable
/// and the sweeper removes them; the quota is given back at once.
pub async fn delete_document(r: &RequestContext, id: Uuid) -> ApiResult<()> {
    let db = r.db()?.as_ref();
    let doc = store::documents::by_id(db, id).await?.ok_or(ApiError::NotFound("document"))?;
    let versions = versions_of(db, id).await?;
    document_versions::Entity::delete_many()
        .filter(document_versions::Column::TenantId.eq(db.tenant()))
        .filter(document_versions::Column::DocumentId.eq(id))
        .exec(db)
        .await?;
    if !store::documents::delete(db, id).await? {
        return Err(ApiError::NotFound("document"));
    }
    quota::recount_usage(db).await?;
    announce_document(r, &doc, ChangeKind::Deleted, None).await?;
    r.audit(Event {
        action: "document.delete",
        target_type: "document",
        target_id: Some(id),
        changes: Some(json!({ "versions": versions.len() })),
    })
    .await
}

pub async fn version_of_id(db: &TenantDb, id: Uuid) -> ApiResult<Option<document_versions::Model>> {
    Ok(document_versions::Entity::find_by_id(id)
        .filter(document_versions::Column::TenantId.eq(db.tenant()))
        .one(db)
        .await?)
}

/// What the request left to do once its transaction has ended (`committed`
/// says whether it committed): keep or remove its staged files, and record
/// the download links it issued.
pub async fn after_request(files: &Files, r: &RequestContext, committed: bool) {
    let Ok(tenant) = r.tenant().map(|t| t.id) else { return };
    if let Some(staged) = r.extension::<StagedUploads>() {
        staged.settle(&files.db, tenant, committed).await;
    }
    if let Some(links) = r.extension::<links::IssuedLinks>() {
        links.record(files, r, tenant).await;
    }
}
