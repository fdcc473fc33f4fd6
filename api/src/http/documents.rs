//! The document an operation runs, resolved in one place before anything
//! looks at it, so that the GET check, the writer decision and execution
//! all see the text that will run:
//! - Apollo's automatic persisted queries (`extensions.persistedQuery`,
//!   version 1): a hash alone runs the document registered under it, or
//!   answers `PERSISTED_QUERY_NOT_FOUND` so the client sends the text; a
//!   text with its hash is checked against it, and registered once it has
//!   parsed and validated.
//! - The agency's trusted documents, by the id clients of a persisted query
//!   list send: Apollo's `sha256Hash` (the manifest's id), Relay's `doc_id`
//!   or `documentId`. They serve every caller of the agency; with the mode
//!   `REQUIRE` an API key may run nothing else, and with `LOG_UNKNOWN` what
//!   else it runs is logged.

use async_graphql::{BatchRequest, Value};
use sha2::{Digest as _, Sha256};

use crate::{
    auth::Principal,
    error::ApiError,
    persisted::{Mode, Policy, registered::{Hash, Scope}},
    request::RequestContext,
    state::AppState,
};

/// Where a request's document id (Relay's `doc_id` or `documentId`) is kept
/// once read off HTTP.
const DOCUMENT_ID: &str = "documentId";

/// A text sent with its hash, to register once it has parsed and validated.
pub struct Registration {
    scope: Scope,
    hash: Hash,
    text: String,
}

/// Whether `op` names its document by id instead of sending its text.
pub fn sends_id(op: &async_graphql::Request) -> bool {
    op.extensions.contains_key("persistedQuery") || op.extensions.contains_key(DOCUMENT_ID)
}

/// Relay's `doc_id` / `documentId` of a JSON body, which the library's
/// request type drops. Read only when an operation came without text.
pub fn read_ids_from_json(bytes: &[u8], batch: &mut BatchRequest) {
    let ops = match batch {
        BatchRequest::Single(op) => std::slice::from_mut(op),
        BatchRequest::Batch(ops) => ops.as_mut_slice(),
    };
    if ops.iter().all(|op| !op.query.trim().is_empty() || sends_id(op)) {
        return;
    }
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(bytes) else { return };
    let objects = match &body {
        serde_json::Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    for (op, object) in ops.iter_mut().zip(objects) {
        if let Some(id) = ["doc_id", DOCUMENT_ID].iter().find_map(|k| object.get(*k).and_then(serde_json::Value::as_str)) {
            op.extensions.insert(DOCUMENT_ID.into(), Value::String(id.to_owned()));
        }
    }
}

/// What a GET's query string carries that the library's parser drops:
/// `operationName` (it reads `operation_name`), and Relay's ids.
pub fn read_ids_from_query_string(query: &str, op: &mut async_graphql::Request) {
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "operationName" if op.operation_name.is_none() && !value.is_empty() => op.operation_name = Some(value.into_owned()),
            "doc_id" | "documentId" => {
                op.extensions.insert(DOCUMENT_ID.into(), Value::String(value.into_owned()));
            }
            _ => {}
        }
    }
}

/// `extensions.persistedQuery`: its id (`sha256Hash`), and that id as a
/// SHA-256 when it is one.
fn persisted_query(op: &async_graphql::Request) -> Result<Option<(String, Option<Hash>)>, ApiError> {
    let Some(pq) = op.extensions.get("persistedQuery") else { return Ok(None) };
    let bad = |message: &str| ApiError::BadUserInput { field: "extensions.persistedQuery", message: message.into() };
    let Value::Object(pq) = pq else { return Err(bad("must be an object: {\"version\": 1, \"sha256Hash\": \"<hex>\"}")) };
    match pq.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        _ => return Err(bad("only version 1 of the persisted query protocol is served: send \"version\": 1")),
    }
    let Some(Value::String(id)) = pq.get("sha256Hash") else { return Err(bad("has no string \"sha256Hash\"")) };
    let mut hash = [0u8; 32];
    let hash = hex::decode_to_slice(id, &mut hash).is_ok().then_some(hash);
    Ok(Some((id.clone(), hash)))
}

fn document_id(op: &async_graphql::Request) -> Result<Option<String>, ApiError> {
    match op.extensions.get(DOCUMENT_ID) {
        None => Ok(None),
        Some(Value::String(id)) if !id.is_empty() => Ok(Some(id.clone())),
        Some(_) => Err(ApiError::BadUserInput { field: "documentId", message: "must be a non-empty string".into() }),
    }
}

/// Resolves `op`'s text; see the module.
pub async fn resolve(state: &AppState, ctx: &RequestContext, mut op: async_graphql::Request) -> Result<(async_graphql::Request, Option<Registration>), ApiError> {
    let pq = persisted_query(&op)?;
    let id = document_id(&op)?.or_else(|| pq.as_ref().map(|(id, _)| id.clone()));
    let tenant = ctx.tenant().ok().map(|t| t.id);
    let key = match &ctx.principal {
        Principal::ApiKey(k) => Some(k),
        _ => None,
    };
    let trusted = &state.persisted.trusted;
    let policy = match (tenant, key) {
        (Some(t), Some(_)) => trusted.policy(t).await?,
        _ => Policy::default(),
    };
    let has_text = !op.query.trim().is_empty();

    if policy.mode == Mode::Require {
        let list = match tenant {
            Some(t) => trusted.list(t, &policy).await?,
            None => None,
        };
        let Some(id) = id else {
            return Err(ApiError::TrustedDocumentRequired(
                "this agency runs only its trusted documents for API keys: send the operation's id from its manifest (extensions.persistedQuery.sha256Hash, or doc_id) instead of its text".into(),
            ));
        };
        let version = list.as_ref().map_or_else(|| "none is uploaded".into(), |l| format!("version {}", l.version));
        let Some(body) = list.as_ref().and_then(|l| l.get(&id)) else {
            return Err(ApiError::TrustedDocumentRequired(format!(
                "the operation `{id}` is not in this agency's trusted documents (active manifest: {version}); API keys may run only those"
            )));
        };
        if has_text && op.query != **body {
            return Err(ApiError::TrustedDocumentRequired(format!("the text sent with `{id}` is not the trusted document's; send the id alone")));
        }
        op.query = body.to_string();
        return Ok((op, None));
    }

    let mut listed = false;
    if !has_text {
        let id = id.ok_or_else(|| ApiError::BadUserInput { field: "query", message: "the request has no `query`: send the GraphQL document as a string".into() })?;
        // The agency's trusted documents first (in process), then APQ.
        let mut text = None;
        if let Some(t) = tenant {
            let policy = if key.is_some() { policy } else { trusted.policy(t).await? };
            text = trusted.list(t, &policy).await?.and_then(|l| l.get(&id).cloned());
            listed = text.is_some();
        }
        if text.is_none()
            && let Some((_, Some(hash))) = &pq
        {
            text = state.persisted.registered.get(tenant, hash).await;
        }
        op.query = text.ok_or(ApiError::PersistedQueryNotFound)?.to_string();
    }

    let mut registration = None;
    if has_text && let Some((sent, hash)) = &pq {
        let computed: Hash = Sha256::digest(op.query.as_bytes()).into();
        if *hash != Some(computed) {
            return Err(ApiError::PersistedQueryHashMismatch { sent: sent.clone(), computed: hex::encode(computed) });
        }
        registration = Some(Registration { scope: tenant, hash: computed, text: op.query.clone() });
    }

    if policy.mode == Mode::LogUnknown && !listed {
        let list = match tenant {
            Some(t) => trusted.list(t, &policy).await?,
            None => None,
        };
        if !list.is_some_and(|l| l.contains_text(&op.query)) {
            tracing::warn!(
                request_id = %ctx.request_id,
                api_key = %key.map(|k| k.key_id.to_string()).unwrap_or_default(),
                operation_name = op.operation_name.as_deref().unwrap_or(""),
                sha256 = %hex::encode(Sha256::digest(op.query.as_bytes())),
                "an API key ran an operation that is not in its agency's trusted documents (mode LOG_UNKNOWN)"
            );
        }
    }
    Ok((op, registration))
}

/// Keeps a registration whose document parsed and validated (as Apollo
/// Server does): what did not is never stored.
pub async fn settle(state: &AppState, registration: Option<Registration>, response: &async_graphql::Response) {
    let Some(r) = registration else { return };
    let refused = response.errors.iter().any(|e| {
        matches!(
            e.extensions.as_ref().and_then(|x| x.get("code")),
            Some(Value::String(c)) if c == crate::graphql::request_errors::PARSE_FAILED || c == crate::graphql::request_errors::VALIDATION_FAILED
        )
    });
    if !refused {
        state.persisted.registered.register(r.scope, &r.hash, &r.text).await;
    }
}
