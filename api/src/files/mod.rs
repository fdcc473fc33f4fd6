//! Documents as files (SPEC §6): uploads streamed to object storage, versions,
//! quotas, download links, direct uploads, and the sweeper.
//!
//! Consistency rests on one order: bytes are stored first, under a fresh key
//! built from ids; the rows that point at them are written in the request's
//! transaction. A row therefore never exists without its bytes. Bytes whose
//! rows never committed, or whose rows were deleted, are unreachable, and the
//! sweeper removes them once they are older than the grace period.

pub mod sweep;

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{document_versions, documents};
use sea_orm::{ActiveValue::Set, ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _};
use serde_json::json;
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult},
    objects::{self, StorageError},
    startup::AppState,
    store::{self, TenantDb, audit::Event, validate},
    tenancy::RequestContext,
};

/// What a document is attached to.
#[derive(Debug, Clone, Copy)]
pub enum Owner {
    Project(Uuid),
    Client(Uuid),
}

/// A file of a multipart request, already streamed to storage at `key` by
/// the HTTP layer; its rows are still to be written.
#[derive(Debug, Clone)]
pub struct Staged {
    pub key: String,
    pub version_id: Uuid,
    pub filename: String,
    pub declared_type: Option<String>,
    pub stored: objects::Stored,
}

/// The request's staged files, in the order of its `Upload` indexes.
#[derive(Debug, Clone, Default)]
pub struct StagedUploads(pub Vec<Staged>);

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

/// Takes `size` bytes from the tenant's quota, or refuses. One conditional
/// update, so concurrent uploads cannot overshoot together.
async fn charge_quota(db: &TenantDb, size: u64) -> ApiResult<()> {
    use entity::tenants::{Column, Entity};
    use sea_orm::sea_query::{Expr, ExprTrait as _};
    let size = i64::try_from(size).map_err(ApiError::internal)?;
    let charged = Entity::update_many()
        .col_expr(Column::StorageUsedBytes, Expr::col(Column::StorageUsedBytes).add(size))
        .filter(Column::Id.eq(db.tenant()))
        .filter(Expr::col(Column::StorageUsedBytes).add(size).lte(Expr::col(Column::StorageQuotaBytes)))
        .exec(db)
        .await?;
    if charged.rows_affected == 1 {
        return Ok(());
    }
    let (quota, used) = usage(db).await?;
    Err(ApiError::QuotaExceeded { quota, used, needed: size })
}

/// The tenant's (quota, used) bytes.
pub async fn usage(db: &TenantDb) -> ApiResult<(i64, i64)> {
    let t = entity::tenants::Entity::find_by_id(db.tenant()).one(db).await?.ok_or(ApiError::TenantNotFound)?;
    Ok((t.storage_quota_bytes, t.storage_used_bytes))
}

/// Sets the tenant's used bytes to what its versions hold (after deletes,
/// including cascades).
pub async fn recount_usage(db: &TenantDb) -> ApiResult<()> {
    use entity::tenants::{Column, Entity};
    use sea_orm::sea_query::{Expr, ExprTrait as _, Func, Query};
    let held = Query::select()
        .expr(Func::coalesce([Expr::col(document_versions::Column::SizeBytes).sum(), Expr::val(0i64)]))
        .from(document_versions::Entity)
        .and_where(Expr::col(document_versions::Column::TenantId).eq(db.tenant()))
        .to_owned();
    Entity::update_many()
        .col_expr(Column::StorageUsedBytes, Expr::SubQuery(None, Box::new(held.into())))
        .filter(Column::Id.eq(db.tenant()))
        .exec(db)
        .await?;
    Ok(())
}

/// Refuses before anything is stored: too large, or past the quota.
async fn precheck(state: &AppState, db: &TenantDb, size: u64) -> ApiResult<()> {
    let max = state.settings.storage.max_file_bytes;
    if size > max {
        return Err(ApiError::PayloadTooLarge(format!("the file has {size} bytes and the limit is {max}")));
    }
    let (quota, used) = usage(db).await?;
    let size_i = i64::try_from(size).map_err(ApiError::internal)?;
    if used.saturating_add(size_i) > quota {
        return Err(ApiError::QuotaExceeded { quota, used, needed: size_i });
    }
    Ok(())
}

/// Runs `checks` on bytes already stored at `key`; when they refuse, the
/// bytes are removed at once (or else by the sweeper).
async fn or_discard<T>(state: &AppState, key: &str, checks: impl Future<Output = ApiResult<T>>) -> ApiResult<T> {
    let result = checks.await;
    if result.is_err()
        && let Err(del) = state.objects.delete(key).await
    {
        tracing::warn!(error = ?anyhow::Error::from(del), key, "removing refused bytes; the sweeper will");
    }
    result
}

/// `ids`: the document's and the version's.
fn version_row(
    tenant: Uuid,
    (document_id, version_id): (Uuid, Uuid),
    version: i32,
    key: String,
    content_type: &str,
    stored: &objects::Stored,
    actor: Option<Uuid>,
) -> ApiResult<document_versions::ActiveModel> {
    Ok(document_versions::ActiveModel {
        id: Set(version_id),
        tenant_id: Set(tenant),
        document_id: Set(document_id),
        version: Set(version),
        storage_key: Set(key),
        content_type: Set(content_type.to_owned()),
        size_bytes: Set(i64::try_from(stored.size).map_err(ApiError::internal)?),
        checksum_sha256: Set(stored.sha256.clone()),
        uploaded_by: Set(actor),
        created_at: Set(Utc::now()),
    })
}

/// A new document from an uploaded (staged) file.
pub async fn upload_document(
    state: &AppState,
    r: &RequestContext,
    owner: Owner,
    name: Option<&str>,
    staged: Staged,
) -> ApiResult<documents::Model> {
    let db = r.db()?.as_ref();
    let (project, client) = match owner {
        Owner::Project(p) => (Some(p), None),
        Owner::Client(c) => (None, Some(c)),
    };
    let (name, content_type) = or_discard(state, &staged.key, async {
        let name = document_name(name, &staged.filename)?;
        let content_type = checked_content_type(staged.declared_type.as_deref(), &staged.stored.head)?;
        store::documents::check_owner(db, project, client).await?;
        precheck(state, db, staged.stored.size).await?;
        Ok((name, content_type))
    })
    .await?;
    let ids = (Uuid::now_v7(), staged.version_id);
    record_new(state, r, ids, staged.key, name, &content_type, &staged.stored, project, client).await
}

/// The rows of a new document whose bytes are stored. Should the quota
/// refuse here, the bytes just stored are removed at once.
#[allow(clippy::too_many_arguments)]
async fn record_new(
    state: &AppState,
    r: &RequestContext,
    (document_id, version_id): (Uuid, Uuid),
    key: String,
    name: String,
    content_type: &str,
    stored: &objects::Stored,
    project: Option<Uuid>,
    client: Option<Uuid>,
) -> ApiResult<documents::Model> {
    let db = r.db()?.as_ref();
    or_discard(state, &key, charge_quota(db, stored.size)).await?;
    let actor = r.principal.actor().0;
    let now = Utc::now();
    let doc = documents::ActiveModel {
        id: Set(document_id),
        tenant_id: Set(db.tenant()),
        project_id: Set(project),
        client_id: Set(client),
        name: Set(name),
        content_type: Set(content_type.to_owned()),
        size_bytes: Set(i64::try_from(stored.size).map_err(ApiError::internal)?),
        checksum_sha256: Set(stored.sha256.clone()),
        current_version: Set(1),
        uploaded_by: Set(actor),
        created_by: Set(actor),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let doc = documents::Entity::insert(doc).exec_with_returning(db).await?;
    document_versions::Entity::insert(version_row(db.tenant(), (document_id, version_id), 1, key, content_type, stored, actor)?)
        .exec(db)
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
    Ok(doc)
}

/// A new version of an existing document from an uploaded (staged) file.
pub async fn upload_version(state: &AppState, r: &RequestContext, document_id: Uuid, staged: Staged) -> ApiResult<documents::Model> {
    let db = r.db()?.as_ref();
    let content_type = or_discard(state, &staged.key, async {
        let content_type = checked_content_type(staged.declared_type.as_deref(), &staged.stored.head)?;
        precheck(state, db, staged.stored.size).await?;
        Ok(content_type)
    })
    .await?;
    record_version(state, r, document_id, staged.version_id, staged.key, &content_type, &staged.stored).await
}

async fn record_version(
    state: &AppState,
    r: &RequestContext,
    document_id: Uuid,
    version_id: Uuid,
    key: String,
    content_type: &str,
    stored: &objects::Stored,
) -> ApiResult<documents::Model> {
    let db = r.db()?.as_ref();
    let current = or_discard(state, &key, async {
        // Locks the document row, so concurrent versions number one after another.
        let current = store::documents::by_id_for_update(db, document_id).await?.ok_or(ApiError::NotFound("document"))?;
        charge_quota(db, stored.size).await?;
        Ok(current)
    })
    .await?;
    let version = current.current_version + 1;
    let actor = r.principal.actor().0;
    document_versions::Entity::insert(version_row(db.tenant(), (document_id, version_id), version, key, content_type, stored, actor)?)
        .exec(db)
        .await?;
    let mut model: documents::ActiveModel = current.into();
    model.current_version = Set(version);
    model.content_type = Set(content_type.to_owned());
    model.size_bytes = Set(i64::try_from(stored.size).map_err(ApiError::internal)?);
    model.checksum_sha256 = Set(stored.sha256.clone());
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

/// What a download link or URL points at.
#[derive(Debug, Clone)]
pub struct DownloadLink {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// A short-lived way to fetch one version: a presigned GET on S3, a signed
/// link served by the API on local storage. Issuing one is audited.
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

/// What a signed file grant carries; `PURPOSE` keeps one kind from being
/// used as another.
pub trait Grant: serde::Serialize + serde::de::DeserializeOwned {
    const PURPOSE: &'static str;
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

impl Grant for UploadGrant {
    const PURPOSE: &'static str = "upload";
}

pub fn sign_grant<G: Grant>(state: &AppState, tenant: Uuid, ttl: Duration, grant: &G) -> ApiResult<String> {
    let data = serde_json::to_value(grant).map_err(ApiError::internal)?;
    state.auth.tokens.sign_grant(tenant, G::PURPOSE, ttl, data)
}

/// The grant, if `token` is a valid, unexpired one of this kind for `tenant`.
pub fn open_grant<G: Grant>(state: &AppState, tenant: Uuid, token: &str) -> Option<G> {
    let data = state.auth.tokens.verify_grant(token, tenant, G::PURPOSE)?;
    serde_json::from_value(data).ok()
}

/// Deletes a document and all its versions. Their bytes become unreachable
/// and the sweeper removes them; the quota is given back at once.
pub async fn delete_document(r: &RequestContext, id: Uuid) -> ApiResult<()> {
    let db = r.db()?.as_ref();
    let versions = versions_of(db, id).await?;
    document_versions::Entity::delete_many()
        .filter(document_versions::Column::TenantId.eq(db.tenant()))
        .filter(document_versions::Column::DocumentId.eq(id))
        .exec(db)
        .await?;
    if !store::documents::delete(db, id).await? {
        return Err(ApiError::NotFound("document"));
    }
    recount_usage(db).await?;
    r.audit(Event {
        action: "document.delete",
        target_type: "document",
        target_id: Some(id),
        changes: Some(json!({ "versions": versions.len() })),
    })
    .await
}

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

/// What a client needs to upload directly.
#[derive(Debug, Clone)]
pub struct DirectUpload {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Permission to PUT one file straight to storage (presigned on S3, a
/// signed link on local storage), bound to its content type and size.
/// Nothing is recorded until `confirm_upload`.
pub async fn request_upload(
    state: &AppState,
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
            let (p, c) = match owner {
                Owner::Project(p) => (Some(p), None),
                Owner::Client(c) => (None, Some(c)),
            };
            store::documents::check_owner(db, p, c).await?;
            (Uuid::now_v7(), p, c, Some(name))
        }
        Err(doc) => {
            store::documents::by_id(db, doc).await?.ok_or(ApiError::NotFound("document"))?;
            (doc, None, None, None)
        }
    };
    precheck(state, db, size).await?;
    let grant = UploadGrant { doc, ver: Uuid::now_v7(), project, client, name, content_type: content_type.clone(), size };
    let ttl = Duration::from_secs(state.settings.storage.url_ttl_secs);
    let expires_at = Utc::now() + chrono::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(300));
    let token = sign_grant(state, db.tenant(), ttl, &grant)?;
    let key = objects::version_key(db.tenant(), grant.ver);
    let url = match state.objects.presigned_put(&key, ttl, &content_type).await.map_err(storage_failed)? {
        Some(url) => url,
        None => format!("/files/{token}"),
    };
    let headers = vec![("content-type".to_owned(), content_type), ("content-length".to_owned(), size.to_string())];
    Ok(DirectUpload { url, headers, token, expires_at })
}

/// Records a direct upload after checking the object: it exists, has the
/// size it was granted for, its bytes match its type, and the quota takes it.
/// A refused object is removed.
pub async fn confirm_upload(state: &AppState, r: &RequestContext, token: &str) -> ApiResult<documents::Model> {
    let db = r.db()?.as_ref();
    let grant: UploadGrant = open_grant(state, db.tenant(), token).ok_or_else(|| ApiError::BadUserInput { field: "uploadToken", message: "is not a valid, unexpired upload token of this agency".into() })?;
    let key = objects::version_key(db.tenant(), grant.ver);
    if version_by_key(db, &key).await?.is_some() {
        return Err(ApiError::Conflict("this upload is already confirmed".into()));
    }
    let stored = match state.objects.inspect(&key).await {
        Ok(found) => found,
        Err(StorageError::NotFound) => {
            return Err(ApiError::BadUserInput { field: "uploadToken", message: "nothing was uploaded for this token yet".into() });
        }
        Err(e) => return Err(storage_failed(e)),
    };
    or_discard(state, &key, async {
        if stored.size != grant.size {
            let message = format!("the upload has {} bytes, but {} were declared", stored.size, grant.size);
            return Err(ApiError::BadUserInput { field: "uploadToken", message });
        }
        checked_content_type(Some(&grant.content_type), &stored.head).map(|_| ())
    })
    .await?;
    match grant.name {
        Some(name) => record_new(state, r, (grant.doc, grant.ver), key, name, &grant.content_type, &stored, grant.project, grant.client).await,
        None => record_version(state, r, grant.doc, grant.ver, key, &grant.content_type, &stored).await,
    }
}

pub async fn version_by_key(db: &TenantDb, key: &str) -> ApiResult<Option<document_versions::Model>> {
    Ok(document_versions::Entity::find()
        .filter(document_versions::Column::TenantId.eq(db.tenant()))
        .filter(document_versions::Column::StorageKey.eq(key))
        .one(db)
        .await?)
}

pub async fn version_of_id(db: &TenantDb, id: Uuid) -> ApiResult<Option<document_versions::Model>> {
    Ok(document_versions::Entity::find_by_id(id)
        .filter(document_versions::Column::TenantId.eq(db.tenant()))
        .one(db)
        .await?)
}
