//! Charges each operation to its rate-limit budgets (see `rate_limits`) once
//! it is validated and before any resolver runs: a query its complexity (the
//! cost `limits` computed, so a page of 100 weighs what it costs), a
//! mutation one unit per root field, `signUp`, `login` and `platformLogin`
//! to the address's sign-up and sign-in budgets, a subscription its
//! complexity once when it starts. A refusal is a request
//! error with `RATE_LIMITED`, which the HTTP layer answers `429`.
//!
//! The operation is read right after parsing and charged after validation,
//! so one round trip to the budgets covers it, and a document that does not
//! validate is charged nothing beyond its request.

use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::{
    Request, ServerError, ServerResult, ValidationResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextValidation},
    parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet},
};

use crate::{rate_limits::Stage, request::RequestContext, state::AppState};

pub struct RateLimit;

impl ExtensionFactory for RateLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest::default())
    }
}

/// What a mutation's root fields are, by budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Fields {
    sign_ups: u64,
    sign_ins: u64,
    others: u64,
}

/// The operation the request runs, as parsing found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Query,
    Mutation(Fields),
}

/// One request's: the operation it names, then what that operation is.
#[derive(Default)]
struct PerRequest {
    operation_name: Mutex<Option<String>>,
    operation: Mutex<Option<Operation>>,
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
        let doc = next.run(ctx, query, variables).await?;
        let name = self.operation_name.lock().unwrap_or_else(PoisonError::into_inner).take();
        *self.operation.lock().unwrap_or_else(PoisonError::into_inner) = operation(&doc, name.as_deref());
        Ok(doc)
    }

    async fn validation(&self, ctx: &ExtensionContext<'_>, next: NextValidation<'_>) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let operation = self.operation.lock().unwrap_or_else(PoisonError::into_inner).take();
        let (Some(operation), Some(request), Some(state)) =
            (operation, ctx.data_opt::<Arc<RequestContext>>(), ctx.data_opt::<AppState>())
        else {
            return Ok(result);
        };
        // A subscription is charged once, when it starts; not per event.
        if ctx.data_opt::<super::subscription::Delivered>().is_some() {
            return Ok(result);
        }
        let stage = match operation {
            Operation::Query => Stage::Query { cost: u64::try_from(result.complexity).unwrap_or(u64::MAX) },
            Operation::Mutation(f) => Stage::Mutation { sign_ups: f.sign_ups, sign_ins: f.sign_ins, others: f.others },
        };
        if let Err(e) = state.rate_limits.check(request, stage).await {
            return Err(vec![e.into_server_error()]);
        }
        Ok(result)
    }
}

/// The operation `name` selects (or the only one), if it is a query or a
/// mutation; when it selects none, the library refuses the request later.
fn operation(doc: &ExecutableDocument, name: Option<&str>) -> Option<Operation> {
    let op = super::request_errors::selected_operation(doc, name)?;
    match op.node.ty {
        OperationType::Query => Some(Operation::Query),
        OperationType::Mutation => {
            let mut keys = Vec::new();
            root_fields(doc, &op.node.selection_set.node, &mut Vec::new(), &mut keys);
            let mut fields = Fields::default();
            for (_, field) in keys {
                match field {
                    "signUp" => fields.sign_ups += 1,
                    "login" | "platformLogin" => fields.sign_ins += 1,
                    "__typename" => {}
                    _ => fields.others += 1,
                }
            }
            Some(Operation::Mutation(fields))
        }
        // Charged like a query, when it starts (see `validation`).
        OperationType::Subscription => Some(Operation::Query),
    }
}

/// The root fields `set` runs, as (response key, field name), through
/// fragments; one response key is one execution, however often it is
/// spelled. A fragment cycle is followed once (validation refuses it later).
fn root_fields<'a>(doc: &'a ExecutableDocument, set: &'a SelectionSet, spreading: &mut Vec<&'a str>, out: &mut Vec<(&'a str, &'a str)>) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.as_str();
                if !out.iter().any(|(k, _)| *k == key) {
                    out.push((key, field.node.name.node.as_str()));
                }
            }
            Selection::InlineFragment(inline) => root_fields(doc, &inline.node.selection_set.node, spreading, out),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node).filter(|_| !spreading.contains(&name)) {
                    spreading.push(name);
                    root_fields(doc, &fragment.node.selection_set.node, spreading, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(query: &str, name: Option<&str>) -> Option<Operation> {
        operation(&async_graphql::parser::parse_query(query).unwrap(), name)
    }

    #[test]
    fn a_mutation_counts_each_response_key_once_through_fragments() {
        let doc = "mutation M { a: signUp(input: $i) { accessToken } b: signUp(input: $i) { accessToken } ...F ...F __typename }
            fragment F on Mutation { login(input: $j) { accessToken } createClient(input: $k) { id } ... on Mutation { x: createClient(input: $k) { id } } }
            query Q { me { id } }";
        assert_eq!(of(doc, Some("M")), Some(Operation::Mutation(Fields { sign_ups: 2, sign_ins: 1, others: 2 })));
        assert_eq!(of(doc, Some("Q")), Some(Operation::Query));
        assert_eq!(of(doc, None), None, "two operations and no name: the library refuses it");
        assert_eq!(of(doc, Some("missing")), None);
    }

    #[test]
    fn a_fragment_cycle_is_followed_once() {
        let doc = "mutation { ...A } fragment A on Mutation { logout ...B } fragment B on Mutation { ...A platformLogin(email: \"\", password: \"\") { accessToken } }";
        assert_eq!(of(doc, None), Some(Operation::Mutation(Fields { sign_ups: 0, sign_ins: 1, others: 1 })));
    }
}
