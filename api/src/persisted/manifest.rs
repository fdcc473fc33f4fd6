//! Reading a trusted-documents manifest in the formats clients' tooling
//! writes: Apollo's persisted query manifest
//! (`{"format":"apollo-persisted-query-manifest","version":1,"operations":[{"id","name","type","body"}]}`,
//! from `@apollo/generate-persisted-query-manifest`) and Relay's
//! `persisted-queries.json` (`{"<id>": "<text>"}`). Every operation must
//! parse; refusals name the operation.

use std::collections::HashMap;

use async_graphql::parser::types::OperationType;
use serde_json::Value;

use crate::{error::ApiError, store::trusted_documents::NewDocument};

/// The most operations one manifest may hold.
pub const MAX_OPERATIONS: usize = 20_000;

/// The longest id an operation may have.
const MAX_ID_CHARS: usize = 256;

const APOLLO_FORMAT: &str = "apollo-persisted-query-manifest";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Apollo,
    Relay,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apollo => "APOLLO",
            Self::Relay => "RELAY",
        }
    }
}

#[derive(Debug)]
pub struct Manifest {
    pub format: Format,
    pub operations: Vec<NewDocument>,
}

fn bad(message: String) -> ApiError {
    ApiError::BadUserInput { field: "manifest", message }
}

/// Reads a manifest, each body at most `max_body_bytes`.
pub fn parse(value: &Value, max_body_bytes: usize) -> Result<Manifest, ApiError> {
    let Value::Object(map) = value else {
        return Err(bad(format!(
            "a manifest is a JSON object: Apollo's {{\"format\": \"{APOLLO_FORMAT}\", \"version\": 1, \"operations\": [...]}} or Relay's {{\"<id>\": \"<query text>\"}}"
        )));
    };
    let (format, raw) = if map.contains_key("format") || map.contains_key("operations") {
        (Format::Apollo, apollo(map)?)
    } else {
        let ops = map
            .iter()
            .map(|(id, body)| match body {
                Value::String(text) => Ok((id.clone(), None, None, text.clone())),
                _ => Err(bad(format!("in a Relay manifest every value is the text of an operation; the one for `{id}` is not a string"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        (Format::Relay, ops)
    };
    if raw.is_empty() {
        return Err(bad("the manifest has no operations".into()));
    }
    if raw.len() > MAX_OPERATIONS {
        return Err(bad(format!("the manifest has {} operations; at most {MAX_OPERATIONS} are taken", raw.len())));
    }
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(raw.len());
    let mut operations: Vec<NewDocument> = Vec::with_capacity(raw.len());
    for (id, name, kind, body) in raw {
        if id.is_empty() || id.chars().count() > MAX_ID_CHARS || id.chars().any(char::is_control) {
            return Err(bad(format!("the operation id `{}` must be 1 to {MAX_ID_CHARS} printable characters", id.escape_debug())));
        }
        if body.len() > max_body_bytes {
            return Err(bad(format!("the operation `{id}` has {} bytes; at most {max_body_bytes} are taken", body.len())));
        }
        let doc = async_graphql::parser::parse_query(&body)
            .map_err(|e| bad(format!("the operation `{id}` does not parse: {}", e.to_string().lines().next().unwrap_or_default())))?;
        let first = doc.operations.iter().next().map(|(n, op)| (n.map(|n| n.to_string()), op.node.ty));
        let name = name.or_else(|| first.as_ref().and_then(|(n, _)| n.clone()));
        let kind = kind.or_else(|| first.map(|(_, ty)| type_name(ty).to_owned()));
        match seen.get(&id) {
            Some(&i) if operations[i].body == body => continue,
            Some(_) => return Err(bad(format!("the id `{id}` names two different operations"))),
            None => {}
        }
        seen.insert(id.clone(), operations.len());
        operations.push(NewDocument { document_id: id, operation_name: name, operation_type: kind, body });
    }
    Ok(Manifest { format, operations })
}

type Raw = (String, Option<String>, Option<String>, String);

fn apollo(map: &serde_json::Map<String, Value>) -> Result<Vec<Raw>, ApiError> {
    if map.get("format").and_then(Value::as_str) != Some(APOLLO_FORMAT) {
        return Err(bad(format!("an Apollo manifest has \"format\": \"{APOLLO_FORMAT}\"")));
    }
    if map.get("version").and_then(Value::as_u64) != Some(1) {
        return Err(bad("only version 1 of Apollo's manifest format is known".into()));
    }
    let Some(Value::Array(ops)) = map.get("operations") else {
        return Err(bad("an Apollo manifest has an \"operations\" array".into()));
    };
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            let text = |key: &str| op.get(key).and_then(Value::as_str).map(str::to_owned);
            let id = text("id").ok_or_else(|| bad(format!("operation {i} has no string \"id\"")))?;
            let body = text("body").ok_or_else(|| bad(format!("the operation `{id}` has no string \"body\"")))?;
            let kind = text("type").map(|t| t.to_ascii_uppercase());
            Ok((id, text("name"), kind, body))
        })
        .collect()
}

fn type_name(ty: OperationType) -> &'static str {
    match ty {
        OperationType::Query => "QUERY",
        OperationType::Mutation => "MUTATION",
        OperationType::Subscription => "SUBSCRIPTION",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn both_formats_are_read_and_names_come_from_the_text_when_missing() {
        let apollo = json!({ "format": APOLLO_FORMAT, "version": 1, "operations": [
            { "id": "a1", "name": "Me", "type": "query", "body": "query Me { me { id } }" },
        ] });
        let m = parse(&apollo, 1000).unwrap();
        assert_eq!((m.format, m.operations[0].operation_type.as_deref()), (Format::Apollo, Some("QUERY")));
        let relay = json!({ "r1": "mutation Go { logout }" });
        let m = parse(&relay, 1000).unwrap();
        assert_eq!(m.format, Format::Relay);
        assert_eq!(m.operations[0].operation_name.as_deref(), Some("Go"));
        assert_eq!(m.operations[0].operation_type.as_deref(), Some("MUTATION"));
    }

    #[test]
    fn a_body_that_does_not_parse_or_an_id_used_twice_is_refused_by_name() {
        let err = |v: Value, max: usize| match parse(&v, max) {
            Err(ApiError::BadUserInput { message, .. }) => message,
            other => panic!("{other:?}"),
        };
        assert!(err(json!({ "x9": "query {" }), 1000).contains("`x9`"));
        let twice = json!({ "format": APOLLO_FORMAT, "version": 1, "operations": [
            { "id": "a", "body": "{ me { id } }" }, { "id": "a", "body": "{ tenant { id } }" },
        ] });
        assert!(err(twice, 1000).contains("two different"));
        assert!(err(json!({ "big": "{ me { id } }" }), 5).contains("`big` has 13 bytes"));
    }
}
