//! Rate limits: budgets per client address, user, API key and agency, for
//! requests, query cost, mutations, sign-ups and sign-ins (`budgets`),
//! checked with GCRA (`cache::gcra`) in the shared cache, so that every
//! replica spends from one budget. A check charges all of its buckets in one
//! round trip, all or nothing.
//!
//! When Redis cannot answer (its breaker is open, or the call fails), each
//! replica checks the same budgets in its own memory: limits keep holding,
//! per replica, and no request waits on Redis or goes unlimited.
//!
//! Callers: the HTTP step (`http::rate_limit`) charges an upload's request
//! before its body is read, and defers any other request's charge to its
//! first operation, so that one round trip carries both; the GraphQL
//! extension (`graphql::rate_limit`) charges each operation once it is
//! validated; a request no operation charged is charged once answered. Each records where the request
//! stands in its [`RateReport`] for the RateLimit header fields.

mod budgets;
mod report;

use std::sync::Arc;

pub use budgets::{Budget, Stage, Unit};
pub use report::{RateReport, Standing};

use crate::{
    cache::{
        Cache, MemoryCache,
        gcra::{Bucket, Taken},
    },
    config::RateLimitSettings,
    error::{ApiError, ApiResult},
    request::RequestContext,
};

#[derive(Debug, Clone)]
pub struct RateLimits {
    settings: Arc<RateLimitSettings>,
    shared: Arc<dyn Cache>,
    /// The same budgets in this process, for when the shared cache cannot
    /// answer.
    local: Arc<MemoryCache>,
}

fn secs(us: u64) -> u64 {
    us.div_ceil(1_000_000)
}

impl RateLimits {
    pub fn new(settings: RateLimitSettings, shared: Arc<dyn Cache>) -> Self {
        Self { settings: Arc::new(settings), shared, local: Arc::new(MemoryCache::new()) }
    }

    /// Charges `stage` of the request to its budgets, and records where each
    /// stands in the request's report. `RATE_LIMITED` (nothing charged)
    /// names the budget that refused and when to try again.
    pub async fn check(&self, ctx: &RequestContext, stage: Stage) -> ApiResult<()> {
        if !self.settings.enabled {
            return Ok(());
        }
        let mut charges = budgets::charges(&self.settings, ctx, stage);
        if !matches!(stage, Stage::Request) && ctx.extension::<RateReport>().is_some_and(|r| r.take_request_pending()) {
            charges.extend(budgets::charges(&self.settings, ctx, Stage::Request));
        }
        if charges.is_empty() {
            return Ok(());
        }
        let buckets: Vec<Bucket> =
            charges.iter().map(|c| Bucket::new(c.key.clone(), c.budget.quota, c.budget.window(), c.cost)).collect();
        let taken = self.take(&buckets).await;
        let standings: Vec<Standing> = charges
            .iter()
            .zip(&buckets)
            .zip(&taken.ahead_us)
            .map(|((c, b), ahead)| {
                let wait = if taken.allowed { 0 } else { b.wait_us(*ahead) };
                Standing {
                    budget: c.budget,
                    remaining: b.remaining(*ahead),
                    reset_secs: if wait > 0 { secs(wait).max(1) } else { secs(*ahead) },
                    refused: wait > 0,
                }
            })
            .collect();
        if let Some(report) = ctx.extension::<RateReport>() {
            report.record(standings.iter().copied());
        }
        match standings.iter().filter(|s| s.refused).max_by_key(|s| s.reset_secs) {
            None => Ok(()),
            Some(s) => {
                crate::metrics::rate_limited(s.budget.name);
                Err(ApiError::OverBudget {
                    budget: s.budget.name,
                    quota: s.budget.quota,
                    window_secs: s.budget.window_secs,
                    retry_after: s.reset_secs,
                })
            }
        }
    }

    /// Charges the request's own budgets if no operation carried them (it
    /// was refused, or failed, before one was checked). The answer is
    /// already decided: a refusal here counts against the next request.
    pub async fn settle_request(&self, ctx: &RequestContext) {
        if ctx.extension::<RateReport>().is_some_and(|r| r.take_request_pending()) {
            let _ = self.check(ctx, Stage::Request).await;
        }
    }

    /// The shared cache's answer, or this process's when it has none: never
    /// a wait on a Redis known to be down, never unlimited.
    async fn take(&self, buckets: &[Bucket]) -> Taken {
        if !self.shared.is_degraded() {
            match self.shared.take(buckets).await {
                Ok(taken) => return taken,
                Err(e) => tracing::warn!(error = %e, "rate limits counted in this process only"),
            }
        }
        match self.local.take(buckets).await {
            Ok(taken) => taken,
            // The in-process cache has no failure; were there one, serving
            // beats refusing everyone.
            Err(_) => Taken { allowed: true, ahead_us: vec![0; buckets.len()] },
        }
    }
}
