//! What one operation may hold and cost, decided before any resolver runs
//! (`[limits]`), each refusal with a code that names the limit, the value
//! found (`extensions`) and the limit.
//!
//! [`OperationLimits`] reads the document's text before async-graphql
//! parses it (see `shape`): tokens, aliases, root fields, directives, depth
//! and fragments. On the text rather than the parsed document, for two
//! reasons: a document of a million tokens is refused without building its
//! tree, and async-graphql's own first walk of the tree (inside its parse
//! step, before any extension sees the document) follows every fragment
//! spread anew, so a small document of fragments spreading fragments would
//! take minutes before a check on the tree could run. The text check is
//! linear and takes microseconds for documents within the limits, so it
//! runs on every request: an extension that answers `parse_query` itself
//! (a document cache) must be registered after this one, so that a cached
//! document's text still passes through it.
//!
//! The cost is async-graphql's complexity, computed while it validates
//! ([`CostLimit`]): a field costs 1, a list multiplies what it selects by
//! its page size (`first`, `last`, or the default page), and a download link
//! costs `LINK_COST` (signing one is real work, and a link is a grant), so
//! the budget bounds how many links one request can issue: a page of 100
//! documents with a link each fits, 100 documents with 15 links each do not.
//! It depends on the variables (`first: $n`), so it is checked on every
//! request, never cached with the document.

use std::sync::Arc;

use async_graphql::{
    ServerError, ServerResult, ValidationResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation},
    parser::types::ExecutableDocument,
};

use super::{request_errors::VALIDATION_FAILED, shape};
use crate::{
    config::LimitsSettings,
    error::{ApiError, Limit},
    store::page,
};

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

/// A refusal as a request error: the code, the message, what was found and
/// the limit, and no location (the limit is the document's, not a line's).
fn refusal(err: ApiError) -> ServerError {
    let err: async_graphql::Error = err.into();
    let mut refused = ServerError::new(err.message, None);
    refused.extensions = err.extensions;
    refused
}

/// Checks a document's text against `limits`, before it is parsed: the
/// first limit it breaks, in this order (the most specific first, so that
/// five thousand aliases are refused as aliases, not as tokens).
pub fn check(query: &str, limits: &LimitsSettings) -> Result<(), ServerError> {
    let found = shape::measure(query, limits.max_tokens);
    if let Some(cycle) = found.cycle.as_ref().filter(|_| !found.over_budget) {
        let mut err = ServerError::new(
            format!(
                "the fragment `{}` spreads itself ({}): fragments must not form cycles",
                cycle[0],
                cycle.join(" → ")
            ),
            None,
        );
        err.extensions.get_or_insert_with(Default::default).set("code", VALIDATION_FAILED);
        return Err(err);
    }
    let over = |limit: Limit, found: usize, max: usize| (found > max).then_some(ApiError::OverLimit { limit, found, max });
    let refused = over(Limit::Aliases, found.aliases, limits.max_aliases)
        .or_else(|| over(Limit::RootFields, found.root_fields, limits.max_root_fields))
        .or_else(|| over(Limit::Directives, found.directives, limits.max_directives))
        .or_else(|| over(Limit::Tokens, found.tokens, limits.max_tokens))
        .or_else(|| (found.depth > limits.max_depth).then_some(ApiError::TooDeep { depth: found.depth, limit: limits.max_depth }))
        .or_else(|| over(Limit::Selections, found.selections, limits.max_cost));
    refused.map_or(Ok(()), |err| Err(refusal(err)))
}

/// The limits of `[limits]` checked on a document's text (see the module).
pub struct OperationLimits(Arc<TextLimits>);

impl OperationLimits {
    pub fn new(limits: LimitsSettings) -> Self {
        Self(Arc::new(TextLimits(limits)))
    }
}

impl ExtensionFactory for OperationLimits {
    fn create(&self) -> Arc<dyn Extension> {
        self.0.clone()
    }
}

struct TextLimits(LimitsSettings);

#[async_trait::async_trait]
impl Extension for TextLimits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        check(query, &self.0)?;
        next.run(ctx, query, variables).await
    }
}

/// Refuses an operation that costs more than `limits.max_cost` with
/// `QUERY_TOO_COMPLEX`, the cost and the limit; the library's own refusal
/// would carry neither.
#[derive(Debug, Clone, Copy)]
pub struct CostLimit {
    pub max_cost: usize,
}

impl ExtensionFactory for CostLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_trait::async_trait]
impl Extension for CostLimit {
    async fn validation(&self, ctx: &ExtensionContext<'_>, next: NextValidation<'_>) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if result.complexity > self.max_cost {
            return Err(vec![refusal(ApiError::TooComplex { cost: result.complexity, limit: self.max_cost, link_cost: LINK_COST })]);
        }
        Ok(result)
    }
}
