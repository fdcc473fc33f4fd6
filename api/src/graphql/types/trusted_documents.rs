use async_graphql::{Enum, ID, InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject, Value};
use chrono::{DateTime, Utc};

use crate::persisted::Mode;

/// The format a manifest was uploaded in.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum TrustedDocumentManifestFormat {
    /// Apollo's persisted query manifest (`@apollo/generate-persisted-query-manifest`).
    Apollo,
    /// Relay's `persisted-queries.json`.
    Relay,
}

/// One upload of the agency's trusted documents. Each upload is a new
/// version; the latest is the active one.
#[derive(SimpleObject)]
pub struct TrustedDocumentManifest {
    pub id: ID,
    pub version: i32,
    pub format: TrustedDocumentManifestFormat,
    pub operation_count: i32,
    /// An email, or `platform` for an upload through the CLI.
    pub uploaded_by: String,
    pub created_at: DateTime<Utc>,
    /// Whether it is the latest, the one in force.
    pub active: bool,
}

impl TrustedDocumentManifest {
    pub fn from_model(m: entity::trusted_document_manifests::Model, active: bool) -> Self {
        Self {
            id: ID(m.id.to_string()),
            version: m.version,
            format: if m.format == "RELAY" { TrustedDocumentManifestFormat::Relay } else { TrustedDocumentManifestFormat::Apollo },
            operation_count: m.operation_count,
            uploaded_by: m.uploaded_by,
            created_at: m.created_at,
            active,
        }
    }
}

/// What the agency asks of its API keys' operations.
#[derive(SimpleObject)]
pub struct TrustedDocumentSettings {
    pub mode: Mode,
    pub active_manifest: Option<TrustedDocumentManifest>,
    /// When the mode was last set; none while it never was (OFF).
    pub mode_updated_at: Option<DateTime<Utc>>,
}

/// A manifest as the client sent it; see the scalar.
pub struct TrustedDocumentManifestJson(pub serde_json::Value);

/// A trusted-documents manifest: Apollo's persisted query manifest
/// (`{"format": "apollo-persisted-query-manifest", "version": 1,
/// "operations": [{"id", "name", "type", "body"}]}`) or Relay's
/// `persisted-queries.json` (`{"<id>": "<text>"}`), as a JSON object or as
/// the file's text.
#[Scalar(name = "TrustedDocumentManifestJSON")]
impl ScalarType for TrustedDocumentManifestJson {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(text) => serde_json::from_str(&text)
                .map(Self)
                .map_err(|e| InputValueError::custom(format!("the manifest's text is not JSON: {e}"))),
            value @ Value::Object(_) => value.into_json().map(Self).map_err(|e| InputValueError::custom(e.to_string())),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::String(_) | Value::Object(_))
    }

    fn to_value(&self) -> Value {
        Value::from_json(self.0.clone()).unwrap_or_default()
    }
}
