//! The one error type of the API and its stable codes (SPEC §8).
//!
//! `ApiError` deliberately does not implement `Display`: async-graphql turns
//! any `Display` error into a client message through `?`, which would leak
//! database text. The conversion below is the only way out, and it replaces
//! internal causes with an opaque message and an error id, logging the cause.

use async_graphql::ErrorExtensions;
use poem::http::StatusCode;
use uuid::Uuid;

mod limit;

pub use limit::Limit;

pub enum ApiError {
    Unauthenticated,
    /// The request sent a credential (access token, API key) that is not
    /// valid here: expired, revoked, malformed, or another agency's.
    CredentialRefused,
    Forbidden(&'static str),
    /// The object does not exist, or belongs to another tenant: the two are
    /// answered identically.
    NotFound(&'static str),
    BadUserInput { field: &'static str, message: String },
    Conflict(String),
    /// The host (or `X-Tenant`) names no tenant.
    TenantNotFound,
    TenantInactive,
    /// The operation needs a tenant and the request is on the general API
    /// host without `X-Tenant`.
    TenantRequired,
    MethodNotAllowed(&'static str),
    /// The body's content type is not one the route takes.
    UnsupportedMediaType(String),
    /// A request a browser could send cross-site without a preflight, and
    /// without a header that forces one (see `http::csrf`).
    CsrfPrevented,
    /// `X-API-Version` names a version this server does not serve.
    UnsupportedApiVersion(String),
    /// The origin of a cross-origin request is not allowed here.
    OriginNotAllowed,
    /// A hash-only request (`extensions.persistedQuery`, or a document id)
    /// names no document known here: Apollo's protocol, whose clients then
    /// send the text with its hash.
    PersistedQueryNotFound,
    /// A registration whose hash is not the SHA-256 of its text.
    PersistedQueryHashMismatch { sent: String, computed: String },
    /// The agency runs only its trusted documents for API keys, and this
    /// operation is not one of them (the reason says how).
    TrustedDocumentRequired(String),
    /// Too many attempts; try again after `retry_after` seconds.
    RateLimited { retry_after: u64, why: &'static str },
    /// A rate-limit budget (see `rate_limits`) has no room for the request:
    /// `quota` per `window_secs`; it fits again after `retry_after` seconds.
    OverBudget { budget: &'static str, quota: u64, window_secs: u64, retry_after: u64 },
    /// The email and password do not match an active account (the same
    /// answer for an unknown email, a wrong password, an inactive account).
    InvalidCredentials,
    /// A file or request exceeds a size limit (the message names which).
    PayloadTooLarge(String),
    /// The upload would take the agency past its storage quota.
    QuotaExceeded { quota: i64, used: i64, needed: i64 },
    /// The query costs more than one request may (see `graphql::limits`);
    /// `link_cost` is what one download link costs in it.
    TooComplex { cost: usize, limit: usize, link_cost: usize },
    /// The operation nests fields deeper than one request may (see
    /// `graphql::limits`); introspection's own nesting is not counted.
    TooDeep { depth: usize, limit: usize },
    /// The operation holds more of something than `[limits]` allows.
    OverLimit { limit: Limit, found: usize, max: usize },
    /// The operation ran past `limits.operation_timeout_ms` and was ended.
    Timeout { limit_ms: u64 },
    /// A dependency (database, Redis, storage) cannot be reached.
    Unavailable(&'static str),
    /// The connection to the database broke while the request's change was
    /// being committed: it may or may not have been saved.
    OutcomeUnknown,
    Internal(anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

/// What `PERSISTED_QUERY_NOT_FOUND` means, for a person reading the answer.
pub const PERSISTED_QUERY_NOT_FOUND_DETAIL: &str = "no document is known here under this hash or id: send the query text along with its sha256Hash to register it, or check that the id is in the agency's active trusted-documents manifest";
/// What `Retry-After` says when a dependency is unavailable: outages seen
/// here end in seconds, and clients back off further on their own.
pub const UNAVAILABLE_RETRY_AFTER: u64 = 2;

impl ApiError {
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated | Self::CredentialRefused => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadUserInput { .. } => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::TenantNotFound => "TENANT_NOT_FOUND",
            Self::TenantInactive => "TENANT_INACTIVE",
            Self::TenantRequired => "TENANT_REQUIRED",
            Self::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            Self::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Self::CsrfPrevented => "CSRF_PREVENTED",
            Self::UnsupportedApiVersion(_) => "UNSUPPORTED_API_VERSION",
            Self::OriginNotAllowed => "ORIGIN_NOT_ALLOWED",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::PersistedQueryHashMismatch { .. } => "PERSISTED_QUERY_HASH_MISMATCH",
            Self::TrustedDocumentRequired(_) => "TRUSTED_DOCUMENT_REQUIRED",
            Self::RateLimited { .. } | Self::OverBudget { .. } => "RATE_LIMITED",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::QuotaExceeded { .. } => "QUOTA_EXCEEDED",
            Self::TooComplex { .. } => "QUERY_TOO_COMPLEX",
            Self::TooDeep { .. } => "QUERY_TOO_DEEP",
            Self::OverLimit { limit, .. } => limit.code(),
            Self::Timeout { .. } => "OPERATION_TIMEOUT",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::OutcomeUnknown => "OUTCOME_UNKNOWN",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// The status used when the error ends the HTTP request before GraphQL
    /// execution (GraphQL field errors are answered with 200).
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated | Self::CredentialRefused | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::RateLimited { .. } | Self::OverBudget { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Forbidden(_) | Self::TenantInactive | Self::OriginNotAllowed => StatusCode::FORBIDDEN,
            // As Apollo Server answers it: every APQ client reads the body
            // and retries, and none mistakes the miss for a failure.
            Self::PersistedQueryNotFound => StatusCode::OK,
            Self::PersistedQueryHashMismatch { .. } => StatusCode::BAD_REQUEST,
            Self::TrustedDocumentRequired(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) | Self::TenantNotFound => StatusCode::NOT_FOUND,
            Self::BadUserInput { .. }
            | Self::TenantRequired
            | Self::TooComplex { .. }
            | Self::TooDeep { .. }
            | Self::OverLimit { .. }
            | Self::CsrfPrevented
            | Self::UnsupportedApiVersion(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::QuotaExceeded { .. } => StatusCode::INSUFFICIENT_STORAGE,
            Self::Unavailable(_) | Self::OutcomeUnknown => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            // See the README: a server-side failure (5xx), without the
            // Retry-After of 503, which would invite retrying a heavy operation.
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The message a client sees, written for a person to act on. Internal
    /// causes are logged here, once, with a fresh error id.
    fn client_message(&self) -> (String, Option<Uuid>) {
        let msg = match self {
            Self::Unauthenticated => "authentication is required: send a valid access token or API key".into(),
            Self::CredentialRefused => "the access token or API key sent is not valid here (expired, revoked, malformed, or another agency's): refresh the session or sign in again, or send none".into(),
            Self::Forbidden(why) => format!("not allowed: {why}"),
            Self::NotFound(what) => format!("{what} not found"),
            Self::BadUserInput { field, message } => format!("invalid `{field}`: {message}"),
            Self::Conflict(message) => message.clone(),
            Self::TenantNotFound => "no agency is served at this address: check the host name or the X-Tenant header".into(),
            Self::TenantInactive => "this agency is deactivated; contact the platform administrator".into(),
            Self::TenantRequired => "this operation needs a tenant: use the agency's own host or send an X-Tenant header".into(),
            Self::MethodNotAllowed(why) => (*why).into(),
            Self::UnsupportedMediaType(why) => why.clone(),
            Self::CsrfPrevented => "this request could have been sent by any web page without the browser asking first (a GET, or a POST with a form or text content type), so it is refused as a possible cross-site request forgery: send `Content-Type: application/json`, or a non-empty `Apollo-Require-Preflight` or `X-Apollo-Operation-Name` header".into(),
            Self::UnsupportedApiVersion(sent) => format!("API version `{sent}` is not served here; the supported version is v1 (send `X-API-Version: v1`, or no header)"),
            Self::OriginNotAllowed => "this origin may not call the API from a browser: ask the platform to add it to the allowed origins, or use the agency's own domain".into(),
            // The exact words APQ clients look for (Apollo Kotlin and iOS
            // read the message alone); `detail` says it for a person.
            Self::PersistedQueryNotFound => "PersistedQueryNotFound".into(),
            Self::PersistedQueryHashMismatch { sent, computed } => format!(
                "the persisted query's sha256Hash is {sent}, but the SHA-256 of the query sent with it is {computed}: hash the exact text you send"
            ),
            Self::TrustedDocumentRequired(why) => why.clone(),
            Self::RateLimited { retry_after, why } => format!("{why}; try again in {retry_after} seconds"),
            Self::OverBudget { budget, quota, window_secs, retry_after } => format!(
                "rate limit `{budget}` ({quota} per {window_secs} s) reached; try again in {retry_after} seconds"
            ),
            Self::InvalidCredentials => "the email or password is wrong, or the account is not active".into(),
            Self::PayloadTooLarge(what) => format!("too large: {what}"),
            Self::QuotaExceeded { quota, used, needed } => format!(
                "the agency's storage quota is {quota} bytes, {used} are used and this needs {needed} more; delete documents or ask for a larger quota"
            ),
            Self::TooComplex { cost, limit, link_cost } => format!(
                "this query costs {cost} and one request may cost {limit}: a list multiplies what it selects by its page size, and each downloadUrl costs {link_cost}; ask for smaller pages or fewer links"
            ),
            Self::TooDeep { depth, limit } => format!(
                "the operation is nested {depth} levels deep; the limit is {limit}: fetch what lies deeper in another request"
            ),
            Self::OverLimit { limit, found, max } => limit.message(*found, *max),
            Self::Timeout { limit_ms } => format!(
                "the operation ran for longer than {limit_ms} ms and was ended, and what it changed was rolled back: ask for less (smaller pages, fewer fields), or try again later"
            ),
            Self::Unavailable(what) => format!("{what} is unavailable right now; try again in a few seconds"),
            Self::OutcomeUnknown => "the connection to the database broke while this change was being saved, so it may or may not have been saved: check (for example by reading what it created) before sending it again".into(),
            Self::Internal(cause) => {
                let id = Uuid::now_v7();
                tracing::error!(error_id = %id, error = ?cause, "internal error");
                return (format!("internal error; reference {id} when reporting it"), Some(id));
            }
        };
        (msg, None)
    }

    /// Seconds after which trying again makes sense, for `Retry-After`.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::OverBudget { retry_after, .. } => Some(*retry_after),
            Self::Unavailable(_) | Self::OutcomeUnknown => Some(UNAVAILABLE_RETRY_AFTER),
            _ => None,
        }
    }

    /// The GraphQL-over-HTTP body for an error that ends a request early.
    pub fn into_response_body(self) -> serde_json::Value {
        let err = async_graphql::Error::from(self);
        serde_json::json!({ "errors": [ {
            "message": err.message,
            "extensions": err.extensions,
        } ] })
    }
}

impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Internal(cause) => write!(f, "INTERNAL: {cause:?}"),
            other => write!(f, "{}", other.code()),
        }
    }
}

impl ApiError {
    /// A GraphQL error with no position: a request refused before or
    /// outside execution.
    pub fn into_server_error(self) -> async_graphql::ServerError {
        async_graphql::Error::from(self).into_server_error(async_graphql::Pos::default())
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        let code = err.code();
        let (message, error_id) = err.client_message();
        let field = match &err {
            ApiError::BadUserInput { field, .. } => Some(*field),
            _ => None,
        };
        let retry_after = err.retry_after();
        let budget = match &err {
            ApiError::OverBudget { budget, .. } => Some(*budget),
            _ => None,
        };
        let nesting = match &err {
            ApiError::TooDeep { depth, limit } => Some((*depth, *limit)),
            _ => None,
        };
        let over = match &err {
            ApiError::OverLimit { limit, found, max } => Some((limit.found_key(), *found, *max)),
            ApiError::TooComplex { cost, limit, .. } => Some(("cost", *cost, *limit)),
            _ => None,
        };
        let timeout_ms = match &err {
            ApiError::Timeout { limit_ms } => Some(*limit_ms),
            _ => None,
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(id) = error_id {
                ext.set("errorId", id.to_string());
            }
            if let Some(field) = field {
                ext.set("field", field);
            }
            if let Some(secs) = retry_after {
                ext.set("retryAfter", secs);
            }
            if let Some(budget) = budget {
                ext.set("budget", budget);
            }
            if let Some((depth, limit)) = nesting {
                ext.set("depth", depth);
                ext.set("limit", limit);
            }
            if code == "PERSISTED_QUERY_NOT_FOUND" {
                ext.set("detail", PERSISTED_QUERY_NOT_FOUND_DETAIL);
            }
            if let Some((key, found, max)) = over {
                ext.set(key, found);
                ext.set("limit", max);
            }
            if let Some(ms) = timeout_ms {
                ext.set("timeoutMs", ms);
            }
        })
    }
}

/// A database failure is the database's (`SERVICE_UNAVAILABLE`, retryable)
/// when it is out of reach or too busy to answer in time; anything else is a
/// bug (`INTERNAL`). The cause is logged either way.
impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        if unavailable_logged(&err) { Self::Unavailable("the database") } else { Self::Internal(err.into()) }
    }
}

/// [`db_unavailable`], with the cause logged when it is.
fn unavailable_logged(err: &sea_orm::DbErr) -> bool {
    let unavailable = db_unavailable(err);
    if unavailable {
        tracing::warn!(error = %err, "database unavailable");
    }
    unavailable
}

/// A dataloader's (shared) database error, classified the same way.
impl From<std::sync::Arc<sea_orm::DbErr>> for ApiError {
    fn from(err: std::sync::Arc<sea_orm::DbErr>) -> Self {
        if unavailable_logged(&err) { Self::Unavailable("the database") } else { Self::Internal(anyhow::anyhow!("{err:?}")) }
    }
}

fn sqlx_error(err: &sea_orm::DbErr) -> Option<&sea_orm::sqlx::Error> {
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::Conn(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            Some(e.as_ref())
        }
        _ => None,
    }
}

/// The server cannot reach the database at all: refused, dropped, shut down.
pub fn db_unreachable(err: &sea_orm::DbErr) -> bool {
    use sea_orm::sqlx::Error as E;
    if matches!(err, sea_orm::DbErr::Conn(_)) {
        return true;
    }
    match sqlx_error(err) {
        Some(E::Io(_) | E::Tls(_) | E::PoolClosed | E::WorkerCrashed | E::Protocol(_)) => true,
        Some(E::Database(db)) => {
            let code = db.code().unwrap_or_default();
            // connection exceptions, shutdowns, "cannot connect now", too many connections
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }
        _ => false,
    }
}

/// Out of reach, or too busy to answer in time: no free connection, a
/// statement or lock timeout, SQLite's write lock held too long.
pub fn db_unavailable(err: &sea_orm::DbErr) -> bool {
    use sea_orm::sqlx::Error as E;
    if db_unreachable(err) || matches!(err, sea_orm::DbErr::ConnectionAcquire(_)) {
        return true;
    }
    match sqlx_error(err) {
        Some(E::PoolTimedOut) => true,
        Some(E::Database(db)) => {
            let code = db.code().unwrap_or_default();
            // query_canceled (statement_timeout), lock_not_available,
            // idle_in_transaction_session_timeout, insufficient resources;
            // SQLite: SQLITE_BUSY and SQLITE_LOCKED with their extended codes.
            matches!(code.as_ref(), "57014" | "55P03" | "25P03")
                || code.starts_with("53")
                || code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(err: &async_graphql::Error) -> Option<String> {
        err.extensions.as_ref().and_then(|e| e.get("code")).map(|v| v.to_string())
    }

    #[test]
    fn internal_errors_show_only_an_error_id() {
        let err: async_graphql::Error =
            ApiError::internal(anyhow::anyhow!("relation \"users\" does not exist at 10.0.0.5")).into();
        assert!(!err.message.contains("users") && !err.message.contains("10.0.0.5"), "{}", err.message);
        assert_eq!(code_of(&err).as_deref(), Some("\"INTERNAL\""));
        let id = err.extensions.as_ref().and_then(|e| e.get("errorId")).map(|v| v.to_string()).unwrap_or_default();
        assert!(err.message.contains(id.trim_matches('"')), "{}", err.message);
    }

    #[test]
    fn user_errors_keep_their_code_and_name_the_field() {
        let err: async_graphql::Error =
            ApiError::BadUserInput { field: "subdomain", message: "too short".into() }.into();
        assert_eq!(code_of(&err).as_deref(), Some("\"BAD_USER_INPUT\""));
        assert!(err.message.contains("subdomain") && err.message.contains("too short"));
    }
}
