//! Where a request stands with its budgets, gathered from every check it
//! passed through (the HTTP step, each operation) for the answer's
//! RateLimit header fields, and whether its own charge is still to be made.
//! One report per HTTP request, shared by the operations of a batch.

use std::sync::{
    Arc, Mutex, PoisonError,
    atomic::{AtomicBool, Ordering},
};

use super::budgets::Budget;

/// One budget as a check left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub budget: Budget,
    /// Units left.
    pub remaining: u64,
    /// Seconds until the bucket is whole again; for a refusal, until the
    /// request would have fitted.
    pub reset_secs: u64,
    /// The check was refused by this budget.
    pub refused: bool,
}

impl Standing {
    /// Whether this one is closer to refusing than `other`: a refusal
    /// first (the longer wait), then the smaller share of its quota left,
    /// then the longer reset.
    fn tighter(&self, other: &Self) -> bool {
        if self.refused != other.refused {
            return self.refused;
        }
        let mine = u128::from(self.remaining) * u128::from(other.budget.quota);
        let theirs = u128::from(other.remaining) * u128::from(self.budget.quota);
        if self.refused || mine == theirs {
            return self.reset_secs > other.reset_secs;
        }
        mine < theirs
    }
}

/// Cheap to clone: clones share one report.
#[derive(Debug, Clone, Default)]
pub struct RateReport(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    standings: Mutex<Vec<Standing>>,
    /// The request's own charge (its request budgets) waits to travel with
    /// its first operation's, in the same round trip.
    request_pending: AtomicBool,
}

impl RateReport {
    /// The request's charge is to be made with its first operation's (or,
    /// if no operation gets that far, once it is answered).
    pub fn defer_request(&self) {
        self.0.request_pending.store(true, Ordering::Relaxed);
    }

    /// Whether the request's charge was still to be made; it is not any more.
    pub fn take_request_pending(&self) -> bool {
        self.0.request_pending.swap(false, Ordering::Relaxed)
    }

    /// Records what a check found; a budget seen again (a batch) keeps its
    /// latest standing.
    pub fn record(&self, seen: impl IntoIterator<Item = Standing>) {
        let mut all = self.0.standings.lock().unwrap_or_else(PoisonError::into_inner);
        for s in seen {
            match all.iter_mut().find(|old| old.budget.name == s.budget.name) {
                Some(old) => *old = s,
                None => all.push(s),
            }
        }
    }

    /// Every budget the request was checked against, in the order first met.
    pub fn policies(&self) -> Vec<Budget> {
        self.0.standings.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|s| s.budget).collect()
    }

    /// The budget closest to refusing (or that refused), with its standing.
    pub fn tightest(&self) -> Option<Standing> {
        let all = self.0.standings.lock().unwrap_or_else(PoisonError::into_inner);
        all.iter().copied().reduce(|best, s| if s.tighter(&best) { s } else { best })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limits::budgets::Unit;

    fn standing(name: &'static str, quota: u64, remaining: u64, reset_secs: u64, refused: bool) -> Standing {
        Standing { budget: Budget { name, quota, window_secs: 60, unit: Unit::Requests }, remaining, reset_secs, refused }
    }

    #[test]
    fn the_tightest_is_a_refusal_then_the_smallest_share_left() {
        let report = RateReport::default();
        report.record([standing("user", 600, 300, 30, false), standing("agency", 12_000, 1_200, 54, false)]);
        assert_eq!(report.tightest().map(|s| s.budget.name), Some("agency"), "10% left is tighter than 50%");
        report.record([standing("cost", 60_000, 59_000, 1, false), standing("agency-cost", 100, 100, 0, true)]);
        assert_eq!(report.tightest().map(|s| s.budget.name), Some("agency-cost"));
        report.record([standing("user", 600, 0, 2, true)]);
        assert_eq!(report.tightest().map(|s| s.budget.name), Some("user"), "the longer wait of two refusals");
        let names: Vec<_> = report.policies().iter().map(|b| b.name).collect();
        assert_eq!(names, ["user", "agency", "cost", "agency-cost"], "a budget seen again keeps its place");
    }
}
