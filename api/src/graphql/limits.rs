//! What one query may cost and how deep it may nest, decided before anything
//! runs.
//!
//! async-graphql computes each query's complexity while validating it. Here
//! a list multiplies what it selects by its page size, and a download link
//! costs `LINK_COST` (signing one is real work, and a link is a grant), so
//! the budget bounds how many links one request can issue: a page of 100
//! documents with a link each fits, 100 documents with 300 links each do
//! not. The extension refuses a query over `MAX_COMPLEXITY` with
//! `QUERY_TOO_COMPLEX` and the cost it found; the library's own refusal
//! would carry neither.
//!
//! Depth is ours too (`DepthLimit`), counted as async-graphql's
//! `limit_depth` counted it (each field one level, `__typename` none,
//! fragments inlined where they are spread) except that what is selected
//! under the root introspection fields `__schema` and `__type` does not
//! count: the standard introspection query (GraphiQL, graphql-codegen)
//! nests `ofType` nine levels and must work wherever introspection is on.
//! Production turns introspection off altogether.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    Pos, ServerError, ServerResult, ValidationResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation},
    parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet},
};

use crate::{error::ApiError, store::page};

/// The budget of one query.
pub const MAX_COMPLEXITY: usize = 3_000;

/// How many levels of fields one operation may nest.
pub const MAX_DEPTH: usize = 12;

/// What signing one download link costs.
pub const LINK_COST: usize = 10;

/// A list of `page` items: each costs what is selected of it.
pub fn list_cost(page: i32, child_complexity: usize) -> usize {
    let page = usize::try_from(page).unwrap_or(0).min(page::MAX_PAGE as usize);
    page.max(1).saturating_mul(child_complexity)
}

/// A Relay connection: the page is `first` or `last`, else the default.
pub fn connection_cost(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    let default = i32::try_from(page::DEFAULT_PAGE).unwrap_or(i32::MAX);
    list_cost(first.or(last).unwrap_or(default), child_complexity)
}

pub struct CostLimit;

impl ExtensionFactory for CostLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CostLimit)
    }
}

#[async_trait::async_trait]
impl Extension for CostLimit {
    async fn validation(&self, ctx: &ExtensionContext<'_>, next: NextValidation<'_>) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if result.complexity > MAX_COMPLEXITY {
            let err: async_graphql::Error = ApiError::TooComplex { cost: result.complexity, limit: MAX_COMPLEXITY, link_cost: LINK_COST }.into();
            return Err(vec![err.into_server_error(Pos::default())]);
        }
        Ok(result)
    }
}

/// Refuses, right after parsing, a document with an operation nested deeper
/// than `MAX_DEPTH` with `QUERY_TOO_DEEP`, the depth found and the limit.
pub struct DepthLimit;

impl ExtensionFactory for DepthLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DepthLimit)
    }
}

#[async_trait::async_trait]
impl Extension for DepthLimit {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let depth = depth(&doc);
        if depth > MAX_DEPTH {
            let err: async_graphql::Error = ApiError::TooDeep { depth, limit: MAX_DEPTH }.into();
            return Err(err.into_server_error(Pos::default()));
        }
        Ok(doc)
    }
}

/// The depth of the document's deepest operation: like async-graphql's
/// every operation counts, whichever one the request names.
pub fn depth(doc: &ExecutableDocument) -> usize {
    let mut walk = DepthWalk { doc, memo: HashMap::new(), spreading: Vec::new() };
    doc.operations
        .iter()
        .map(|(_, op)| walk.selection_set(&op.node.selection_set.node, op.node.ty == OperationType::Query))
        .max()
        .unwrap_or(0)
}

struct DepthWalk<'a> {
    doc: &'a ExecutableDocument,
    /// A fragment's depth, by name and whether it is spread at the root of
    /// a query (where introspection fields are).
    memo: HashMap<(&'a str, bool), usize>,
    /// The fragments being spread, outermost first: a cycle stops here
    /// (validation refuses it afterwards).
    spreading: Vec<&'a str>,
}

impl<'a> DepthWalk<'a> {
    /// How many levels of fields `set` nests; `root`: it is the selection of
    /// a query's root type.
    fn selection_set(&mut self, set: &'a SelectionSet, root: bool) -> usize {
        let mut deepest = 0;
        for selection in &set.items {
            let depth = match &selection.node {
                Selection::Field(field) => match field.node.name.node.as_str() {
                    "__typename" => 0,
                    "__schema" | "__type" if root => 1,
                    _ => 1 + self.selection_set(&field.node.selection_set.node, false),
                },
                Selection::InlineFragment(inline) => self.selection_set(&inline.node.selection_set.node, root),
                Selection::FragmentSpread(spread) => self.fragment(spread.node.fragment_name.node.as_str(), root),
            };
            deepest = deepest.max(depth);
        }
        deepest
    }

    fn fragment(&mut self, name: &'a str, root: bool) -> usize {
        if let Some(depth) = self.memo.get(&(name, root)) {
            return *depth;
        }
        // An unknown fragment is validation's to refuse.
        let Some(fragment) = self.doc.fragments.get(name) else { return 0 };
        if self.spreading.contains(&name) {
            return 0;
        }
        self.spreading.push(name);
        let depth = self.selection_set(&fragment.node.selection_set.node, root);
        self.spreading.pop();
        self.memo.insert((name, root), depth);
        depth
    }
}
