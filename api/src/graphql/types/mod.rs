//! GraphQL objects and inputs, mapped from store models.

mod api_key;
mod auth;
mod byte_count;
mod domain;
mod domain_inputs;
mod session;
mod tenant;
mod trusted_documents;
mod user;

pub use api_key::{ApiKey, CreateApiKeyInput, CreatedApiKey};
pub use domain::{AuditEvent, Client, ClientStatus, DirectUpload, Document, DocumentVersion, DownloadLink, HttpHeader, Project, ProjectStatus, enum_name};
pub use domain_inputs::{
    AuditEventFilter, ClientFilter, CreateClientInput, CreateProjectInput, DocumentFilter, ProjectFilter, RequestDocumentUploadInput,
    UpdateClientInput, UpdateDocumentInput, UpdateProjectInput, UploadDocumentInput,
};
pub use auth::{AuthPayload, ChangePasswordInput, LoginInput, PlatformAuthPayload, SignUpInput};
pub use byte_count::{ByteCount, ByteCountField, ByteCountOutOfRange, MAX_BYTE_COUNT};
pub use session::Session;
pub use tenant::Tenant;
pub use trusted_documents::{TrustedDocumentManifest, TrustedDocumentManifestJson, TrustedDocumentSettings};
pub use user::{CreateUserInput, UpdateUserInput, User};
