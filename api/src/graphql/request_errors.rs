//! Request errors with stable codes and readable messages, as Apollo Server
//! gives them: a document that does not parse is `GRAPHQL_PARSE_FAILED`
//! (with "line L, column C: expected …" instead of a parser diagram), one
//! that does not validate is `GRAPHQL_VALIDATION_FAILED`, variables that do
//! not fit their declared types are `BAD_USER_INPUT`, and an operation name
//! the document lacks is `OPERATION_RESOLUTION_FAILURE`. The library reports
//! none of these with a code, and does not check variables the operation
//! never passes to a field; this extension does both, before anything runs.

use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::{
    Name, Positioned, Request, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest, NextValidation,
    },
    parser::types::{ExecutableDocument, OperationDefinition, VariableDefinition},
    registry::{MetaType, MetaTypeName, Registry},
};

pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
pub const OPERATION_RESOLUTION_FAILURE: &str = "OPERATION_RESOLUTION_FAILURE";

pub struct RequestErrors;

impl ExtensionFactory for RequestErrors {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest::default())
    }
}

/// One request's: the operation it names, for checking its variables.
#[derive(Default)]
struct PerRequest {
    operation_name: Mutex<Option<String>>,
}

fn has_code(err: &ServerError) -> bool {
    err.extensions.as_ref().is_some_and(|e| e.get("code").is_some())
}

fn with_code(mut err: ServerError, code: &'static str) -> ServerError {
    if !has_code(&err) {
        err.extensions.get_or_insert_with(Default::default).set("code", code);
    }
    err
}

/// "line 1, column 3: expected selection_set" from pest's diagram.
fn readable_syntax_error(err: &ServerError) -> String {
    let reason = err
        .message
        .rsplit_once("= ")
        .map(|(_, r)| r.trim().replace('_', " "))
        .unwrap_or_else(|| err.message.lines().next().unwrap_or_default().trim().to_owned());
    match err.locations.first() {
        Some(at) => format!("syntax error at line {}, column {}: {reason}", at.line, at.column),
        None => format!("syntax error: {reason}"),
    }
}

#[async_trait::async_trait]
impl Extension for PerRequest {
    async fn prepare_request(&self, ctx: &ExtensionContext<'_>, request: Request, next: NextPrepareRequest<'_>) -> ServerResult<Request> {
        *self.operation_name.lock().unwrap_or_else(PoisonError::into_inner) = request.operation_name.clone();
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await.map_err(|mut e| {
            if !has_code(&e) {
                e.message = readable_syntax_error(&e);
            }
            with_code(e, PARSE_FAILED)
        })?;
        let name = self.operation_name.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(op) = selected_operation(&doc, name.as_deref()) {
            let registry = &ctx.schema_env.registry;
            for def in &op.node.variable_definitions {
                if let Some(problem) = check_variable(registry, def, variables) {
                    return Err(with_code(ServerError::new(problem, Some(def.pos)), BAD_USER_INPUT));
                }
            }
        }
        Ok(doc)
    }

    async fn validation(&self, ctx: &ExtensionContext<'_>, next: NextValidation<'_>) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errs| errs.into_iter().map(|e| with_code(e, VALIDATION_FAILED)).collect())
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut resp = next.run(ctx).await;
        // Choosing the operation fails after validation, outside any hook.
        if resp.data == Value::Null {
            for e in resp.errors.iter_mut().filter(|e| e.path.is_empty() && !has_code(e)) {
                if e.message.starts_with("Unknown operation named") || e.message.starts_with("Operation name required") {
                    let taken = std::mem::replace(e, ServerError::new("", None));
                    *e = with_code(taken, OPERATION_RESOLUTION_FAILURE);
                }
            }
        }
        resp
    }
}

/// The operation a request runs: the one it names, or the document's only
/// one (several and no name is an error execution reports).
pub(crate) fn selected_operation<'a>(doc: &'a ExecutableDocument, name: Option<&str>) -> Option<&'a Positioned<OperationDefinition>> {
    let mut operations = doc.operations.iter();
    let (_, op) = match name {
        Some(name) => operations.find(|(n, _)| n.map(Name::as_str) == Some(name))?,
        None => operations.next().filter(|_| doc.operations.iter().nth(1).is_none())?,
    };
    Some(op)
}

/// Why the request's value for `def` does not fit its type, if it does not.
fn check_variable(registry: &Registry, def: &Positioned<VariableDefinition>, variables: &Variables) -> Option<String> {
    let name = def.node.name.node.as_str();
    let ty = def.node.var_type.node.to_string();
    let value = variables.get(&def.node.name.node);
    if value.is_none() && def.node.default_value.is_some() {
        return None;
    }
    let value = value.cloned().unwrap_or(Value::Null);
    fits(registry, &ty, &value).map(|why| format!("the variable ${name} (of type {ty}) {why}"))
}

/// Input coercion of a variable's value (GraphQL spec §3.5, §3.10, §3.11),
/// enough to refuse what could never run: a missing non-null value, a
/// scalar its type refuses, an unknown enum value, a wrong shape.
fn fits(registry: &Registry, ty: &str, value: &Value) -> Option<String> {
    match MetaTypeName::create(ty) {
        MetaTypeName::NonNull(inner) => match value {
            Value::Null => Some("must not be null".into()),
            v => fits(registry, inner, v),
        },
        _ if *value == Value::Null => None,
        MetaTypeName::List(item) => match value {
            Value::List(items) => items.iter().find_map(|v| fits(registry, item, v)),
            single => fits(registry, item, single),
        },
        MetaTypeName::Named(name) => match registry.types.get(name)? {
            // Files arrive through the multipart map, not the JSON.
            MetaType::Scalar { name, .. } if name == "Upload" => None,
            MetaType::Scalar { is_valid: Some(valid), name, .. } => (!valid(value)).then(|| format!("got {value}, which is not a valid {name}")),
            MetaType::Enum { enum_values, name, .. } => match value {
                Value::Enum(v) if enum_values.contains_key(v.as_str()) => None,
                Value::String(v) if enum_values.contains_key(v.as_str()) => None,
                other => Some(format!("got {other}, which is not a value of {name}")),
            },
            MetaType::InputObject { input_fields, name, .. } => {
                let Value::Object(fields) = value else {
                    return Some(format!("got {value}, but {name} is an object"));
                };
                if let Some(unknown) = fields.keys().find(|k| !input_fields.contains_key(k.as_str())) {
                    return Some(format!("has a field `{unknown}` that {name} does not have"));
                }
                input_fields.values().find_map(|f| match fields.get(f.name.as_str()) {
                    None if f.default_value.is_some() => None,
                    None => fits(registry, &f.ty, &Value::Null).map(|why| format!("field `{}` {why}", f.name)),
                    Some(v) => fits(registry, &f.ty, v).map(|why| format!("field `{}` {why}", f.name)),
                })
            }
            _ => None,
        },
    }
}
