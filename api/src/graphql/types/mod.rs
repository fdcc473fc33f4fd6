//! GraphQL objects and inputs, mapped from store models.

mod api_key;
mod auth;
mod byte_count;
mod domain;
mod session;
mod tenant;
mod trusted_documents;
mod user;

pub use api_key::{ApiKey, CreateApiKeyInput, CreatedApiKey};
pub use domain::{
    AuditEvent, AuditEventFilter, Client, ClientFilter, ClientStatus, CreateClientInput, DirectUpload, DocumentVersion, DownloadLink, HttpHeader, RequestDocumentUploadInput, UploadDocumentInput,
    CreateProjectInput, Document, DocumentFilter, Project, ProjectFilter, ProjectStatus, UpdateClientInput,
    UpdateDocumentInput, UpdateProjectInput, enum_name,
};
pub use auth::{AuthPayload, ChangePasswordInput, LoginInput, PlatformAuthPayload, SignUpInput};
pub use byte_count::{ByteCount, ByteCountField, ByteCountOutOfRange, MAX_BYTE_COUNT};
pub use session::Session;
pub use tenant::Tenant;
pub use trusted_documents::{TrustedDocumentManifest, TrustedDocumentManifestJson, TrustedDocumentSettings};
pub use user::{CreateUserInput, UpdateUserInput, User};
