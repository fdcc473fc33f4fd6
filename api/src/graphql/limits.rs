//! What one query may cost, decided before anything runs.
//!
//! async-graphql computes each query's complexity while validating it. Here
//! a list multiplies what it selects by its page size, and a download link
//! costs `LINK_COST` (signing one is real work, and a link is a grant), so
//! the budget bounds how many links one request can issue: a page of 100
//! documents with a link each fits, 100 documents with 300 links each do
//! not. The extension refuses a query over `MAX_COMPLEXITY` with
//! `QUERY_TOO_COMPLEX` and the cost it found; the library's own refusal
//! would carry neither.

use std::sync::Arc;

use async_graphql::{
    Pos, ServerError, ValidationResult,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation},
};

use crate::{error::ApiError, store::page};

/// The budget of one query.
pub const MAX_COMPLEXITY: usize = 3_000;

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
