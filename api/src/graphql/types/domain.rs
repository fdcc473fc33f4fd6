//! The agency's data: clients, projects, documents, and the audit trail.
//! Nested fields go through the request's dataloaders when no plan
//! answered the root (see `graphql::plan`).

use async_graphql::{ComplexObject, Context, Enum, ID, Json, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{ByteCountField, User};
use crate::{
    error::ApiError,
    graphql::{loaders, request},
    store::{
        page::MAX_PAGE,
        rows::{ClientRow, DocumentRow, ProjectRow},
    },
};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ClientStatus {
    Active,
    Prospect,
    Archived,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ProjectStatus {
    Planned,
    Active,
    OnHold,
    Done,
    Cancelled,
}

/// Enums are stored as their GraphQL names.
pub fn enum_name<T: async_graphql::resolver_utils::EnumType>(v: T) -> &'static str {
    T::items().iter().find(|i| i.value == v).map_or("", |i| i.name)
}

fn parse_enum<T: async_graphql::resolver_utils::EnumType>(s: &str) -> Option<T> {
    T::items().iter().find(|i| i.name == s).map(|i| i.value)
}

fn nested_first(first: i32) -> async_graphql::Result<u64> {
    u64::try_from(first).ok().filter(|n| *n <= MAX_PAGE).ok_or_else(|| {
        ApiError::BadUserInput { field: "first", message: format!("must be between 0 and {MAX_PAGE}") }.into()
    })
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Client {
    pub id: ID,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub status: ClientStatus,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub uuid: Uuid,
}

impl From<&ClientRow> for Client {
    fn from(m: &ClientRow) -> Self {
        Self {
            id: ID(m.id.to_string()),
            name: m.name.clone(),
            email: m.email.clone(),
            phone: m.phone.clone(),
            status: parse_enum(&m.status).unwrap_or(ClientStatus::Active),
            notes: m.notes.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            uuid: m.id,
        }
    }
}

impl From<entity::clients::Model> for Client {
    fn from(m: entity::clients::Model) -> Self {
        Self::from(&ClientRow::from(m))
    }
}

#[ComplexObject]
impl Client {
    /// The client's first projects, oldest first.
    #[graphql(complexity = "crate::graphql::limits::list_cost(first, child_complexity)")]
    async fn projects(&self, ctx: &Context<'_>, #[graphql(default = 20)] first: i32) -> async_graphql::Result<Vec<Project>> {
        let key = (self.uuid, nested_first(first)?);
        let found = loaders(ctx)?.projects_of_client.load_one(key).await.map_err(ApiError::from)?;
        Ok(found.map(|rows| rows.iter().map(Project::from).collect()).unwrap_or_default())
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Project {
    pub id: ID,
    pub name: String,
    pub description: Option<String>,
    pub status: ProjectStatus,
    pub due_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub uuid: Uuid,
    #[graphql(skip)]
    pub client_id: Uuid,
}

impl From<entity::projects::Model> for Project {
    fn from(m: entity::projects::Model) -> Self {
        Self::from(&ProjectRow::from(m))
    }
}

impl From<&ProjectRow> for Project {
    fn from(m: &ProjectRow) -> Self {
        Self {
            id: ID(m.id.to_string()),
            name: m.name.clone(),
            description: m.description.clone(),
            status: parse_enum(&m.status).unwrap_or(ProjectStatus::Planned),
            due_date: m.due_date,
            created_at: m.created_at,
            updated_at: m.updated_at,
            uuid: m.id,
            client_id: m.client_id,
        }
    }
}

#[ComplexObject]
impl Project {
    async fn client(&self, ctx: &Context<'_>) -> async_graphql::Result<Client> {
        let found = loaders(ctx)?.clients.load_one(self.client_id).await.map_err(ApiError::from)?;
        Ok(Client::from(found.ok_or(ApiError::NotFound("client"))?.as_ref()))
    }

    /// The project's first documents, oldest first.
    #[graphql(complexity = "crate::graphql::limits::list_cost(first, child_complexity)")]
    async fn documents(&self, ctx: &Context<'_>, #[graphql(default = 5)] first: i32) -> async_graphql::Result<Vec<Document>> {
        let key = (self.uuid, nested_first(first)?);
        let found = loaders(ctx)?.documents_of_project.load_one(key).await.map_err(ApiError::from)?;
        Ok(found.map(|rows| rows.iter().map(Document::from).collect()).unwrap_or_default())
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Document {
    pub id: ID,
    pub name: String,
    pub content_type: String,
    pub size_bytes: ByteCountField,
    pub checksum_sha256: String,
    pub current_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub project_id: Option<Uuid>,
    #[graphql(skip)]
    pub client_id: Option<Uuid>,
    #[graphql(skip)]
    pub uploaded_by: Option<Uuid>,
    #[graphql(skip)]
    pub uuid: Uuid,
}

impl From<entity::documents::Model> for Document {
    fn from(m: entity::documents::Model) -> Self {
        Self::from(&DocumentRow::from(m))
    }
}

impl From<&DocumentRow> for Document {
    fn from(m: &DocumentRow) -> Self {
        Self {
            id: ID(m.id.to_string()),
            name: m.name.clone(),
            content_type: m.content_type.clone(),
            size_bytes: m.size_bytes.try_into(),
            checksum_sha256: m.checksum_sha256.clone(),
            current_version: m.current_version,
            created_at: m.created_at,
            updated_at: m.updated_at,
            project_id: m.project_id,
            client_id: m.client_id,
            uploaded_by: m.uploaded_by,
            uuid: m.id,
        }
    }
}

#[ComplexObject]
impl Document {
    async fn project(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Project>> {
        let Some(id) = self.project_id else { return Ok(None) };
        Ok(loaders(ctx)?.projects.load_one(id).await.map_err(ApiError::from)?.map(|p| Project::from(p.as_ref())))
    }

    async fn client(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Client>> {
        let Some(id) = self.client_id else { return Ok(None) };
        Ok(loaders(ctx)?.clients.load_one(id).await.map_err(ApiError::from)?.map(|c| Client::from(c.as_ref())))
    }

    /// Every stored version, oldest first.
    async fn versions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<DocumentVersion>> {
        let found = loaders(ctx)?.versions_of_document.load_one(self.uuid).await.map_err(ApiError::from)?;
        Ok(found.unwrap_or_default().into_iter().map(DocumentVersion::from).collect())
    }

    /// A short-lived link to a version's bytes (the current one by default).
    /// Issuing links is recorded in the audit trail, once per request. Each
    /// link costs 10 of a query's complexity budget.
    #[graphql(complexity = "crate::graphql::limits::LINK_COST + child_complexity")]
    async fn download_url(&self, ctx: &Context<'_>, version: Option<i32>) -> async_graphql::Result<DownloadLink> {
        let state = ctx.data::<crate::state::AppState>()?;
        let link = crate::files::download_link(&state.files, request(ctx)?, self.uuid, version).await?;
        Ok(DownloadLink { url: link.url, expires_at: link.expires_at })
    }

    /// Who uploaded it (absent when an API key did, or the user is gone).
    /// API keys read no users, here as in `users`: an integration sees the
    /// documents, not who in the agency handled them.
    async fn uploader(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        if matches!(request(ctx)?.principal, crate::auth::Principal::ApiKey(_)) {
            return Err(ApiError::Forbidden("API keys do not read the agency's users; ask for `uploader` as a signed-in member").into());
        }
        let Some(id) = self.uploaded_by else { return Ok(None) };
        Ok(loaders(ctx)?.users.load_one(id).await.map_err(ApiError::from)?.map(|u| User::from(u.as_ref())))
    }
}

#[derive(SimpleObject)]
pub struct AuditEvent {
    pub id: ID,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<ID>,
    pub actor_user_id: Option<ID>,
    pub actor_api_key_id: Option<ID>,
    pub request_id: String,
    /// The changed fields and their new values.
    pub changes: Option<Json<serde_json::Value>>,
    pub created_at: DateTime<Utc>,
}

impl From<entity::audit_events::Model> for AuditEvent {
    fn from(m: entity::audit_events::Model) -> Self {
        let id = |u: Uuid| ID(u.to_string());
        Self {
            id: id(m.id),
            action: m.action,
            target_type: m.target_type,
            target_id: m.target_id.map(id),
            actor_user_id: m.actor_user_id.map(id),
            actor_api_key_id: m.actor_api_key_id.map(id),
            request_id: m.request_id,
            changes: m.changes.map(Json),
            created_at: m.created_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

/// Where and how to PUT the file, then confirm it with `uploadToken`.
#[derive(SimpleObject)]
pub struct DirectUpload {
    /// A presigned S3 URL, or (local storage) a path on this API.
    pub url: String,
    pub method: String,
    /// Send exactly these headers: the URL is bound to them.
    pub headers: Vec<HttpHeader>,
    pub upload_token: String,
    pub expires_at: DateTime<Utc>,
}

/// A short-lived link to one version's bytes.
#[derive(SimpleObject)]
pub struct DownloadLink {
    /// A presigned S3 URL, or (local storage) a path on this API.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct DocumentVersion {
    pub version: i32,
    pub content_type: String,
    pub size_bytes: ByteCountField,
    pub checksum_sha256: String,
    pub uploaded_by_id: Option<ID>,
    pub created_at: DateTime<Utc>,
}

impl From<entity::document_versions::Model> for DocumentVersion {
    fn from(m: entity::document_versions::Model) -> Self {
        Self {
            version: m.version,
            content_type: m.content_type,
            size_bytes: m.size_bytes.try_into(),
            checksum_sha256: m.checksum_sha256,
            uploaded_by_id: m.uploaded_by.map(|u| ID(u.to_string())),
            created_at: m.created_at,
        }
    }
}
