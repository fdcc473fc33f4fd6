//! The inputs of the agency's data: what mutations take and how lists
//! filter.

use async_graphql::{ID, InputObject, MaybeUndefined, Upload};
use chrono::{DateTime, NaiveDate, Utc};

use super::{ByteCount, ClientStatus, ProjectStatus};

#[derive(InputObject)]
pub struct CreateClientInput {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    #[graphql(default_with = "ClientStatus::Active")]
    pub status: ClientStatus,
    pub notes: Option<String>,
}

/// Fields left out stay; `null` clears an optional one.
#[derive(InputObject)]
pub struct UpdateClientInput {
    pub name: Option<String>,
    pub email: MaybeUndefined<String>,
    pub phone: MaybeUndefined<String>,
    pub status: Option<ClientStatus>,
    pub notes: MaybeUndefined<String>,
}

#[derive(InputObject, Default)]
pub struct ClientFilter {
    pub status: Option<ClientStatus>,
    pub name_contains: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct CreateProjectInput {
    pub client_id: ID,
    pub name: String,
    pub description: Option<String>,
    #[graphql(default_with = "ProjectStatus::Planned")]
    pub status: ProjectStatus,
    pub due_date: Option<NaiveDate>,
}

#[derive(InputObject)]
pub struct UpdateProjectInput {
    pub name: Option<String>,
    pub description: MaybeUndefined<String>,
    pub status: Option<ProjectStatus>,
    pub due_date: MaybeUndefined<NaiveDate>,
}

#[derive(InputObject, Default)]
pub struct ProjectFilter {
    pub status: Option<ProjectStatus>,
    pub client_id: Option<ID>,
    pub name_contains: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct UploadDocumentInput {
    /// Exactly one of `projectId` and `clientId`.
    pub project_id: Option<ID>,
    pub client_id: Option<ID>,
    /// Defaults to the uploaded file's name.
    pub name: Option<String>,
    /// The file (GraphQL multipart request spec). Its declared content type
    /// must agree with its bytes.
    pub file: Upload,
}

/// Permission to upload one file straight to storage.
#[derive(InputObject)]
pub struct RequestDocumentUploadInput {
    /// For a new document: exactly one of `projectId` and `clientId`, and
    /// `name`. For a new version: `documentId` alone.
    pub project_id: Option<ID>,
    pub client_id: Option<ID>,
    pub document_id: Option<ID>,
    pub name: Option<String>,
    pub content_type: String,
    pub size_bytes: ByteCount,
}

#[derive(InputObject)]
pub struct UpdateDocumentInput {
    pub name: String,
}

#[derive(InputObject, Default)]
pub struct DocumentFilter {
    pub project_id: Option<ID>,
    pub client_id: Option<ID>,
    pub name_contains: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

#[derive(InputObject, Default)]
pub struct AuditEventFilter {
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<ID>,
    pub actor_user_id: Option<ID>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}
