//! GraphQL objects and inputs, mapped from store models.

mod api_key;
mod auth;
mod session;
mod tenant;
mod user;

pub use api_key::{ApiKey, CreateApiKeyInput, CreatedApiKey};
pub use auth::{AuthPayload, ChangePasswordInput, LoginInput, PlatformAuthPayload, SignUpInput};
pub use session::Session;
pub use tenant::Tenant;
pub use user::{CreateUserInput, UpdateUserInput, User};
