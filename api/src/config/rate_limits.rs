//! The `[rate_limits]` section: how much each client, user, API key and
//! agency may do. Every budget is a quota over its window (a minute, or an
//! hour for sign-ups), refilled continuously; 0 turns that budget off.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Off: no budget is checked and no RateLimit header is sent (for
    /// benchmarks, or an operator's emergency).
    pub enabled: bool,
    /// Requests, counted before the body is read: anonymous ones by client
    /// address, a user's by user, an API key's by key, and both of the
    /// latter by their agency as well.
    pub address_requests_per_minute: u64,
    pub user_requests_per_minute: u64,
    pub key_requests_per_minute: u64,
    pub agency_requests_per_minute: u64,
    /// What queries cost (their validated complexity, as `graphql::limits`
    /// computes it), by the same subjects.
    pub address_query_cost_per_minute: u64,
    pub user_query_cost_per_minute: u64,
    pub key_query_cost_per_minute: u64,
    pub agency_query_cost_per_minute: u64,
    /// Mutations (each root field of a mutation operation one), by user,
    /// key and agency. Signing up and signing in have budgets of their own.
    pub user_mutations_per_minute: u64,
    pub key_mutations_per_minute: u64,
    pub agency_mutations_per_minute: u64,
    /// `signUp`s from one client address, per hour.
    pub sign_ups_per_address_per_hour: u64,
    /// `login`s and `platformLogin`s from one client address (each a
    /// password hash); failed ones are also throttled by `auth.login_*`.
    pub sign_ins_per_address_per_minute: u64,
}

impl Default for RateLimitSettings {
    /// See the README's design note on rate limits for why these numbers.
    fn default() -> Self {
        Self {
            enabled: true,
            address_requests_per_minute: 300,
            user_requests_per_minute: 600,
            key_requests_per_minute: 1_200,
            agency_requests_per_minute: 12_000,
            address_query_cost_per_minute: 30_000,
            user_query_cost_per_minute: 60_000,
            key_query_cost_per_minute: 120_000,
            agency_query_cost_per_minute: 1_200_000,
            user_mutations_per_minute: 120,
            key_mutations_per_minute: 600,
            agency_mutations_per_minute: 3_000,
            sign_ups_per_address_per_hour: 10,
            sign_ins_per_address_per_minute: 60,
        }
    }
}

impl RateLimitSettings {
    /// Every budget off, the switch on: what tests start from, setting only
    /// the budgets they look at.
    pub fn none() -> Self {
        Self {
            enabled: true,
            address_requests_per_minute: 0,
            user_requests_per_minute: 0,
            key_requests_per_minute: 0,
            agency_requests_per_minute: 0,
            address_query_cost_per_minute: 0,
            user_query_cost_per_minute: 0,
            key_query_cost_per_minute: 0,
            agency_query_cost_per_minute: 0,
            user_mutations_per_minute: 0,
            key_mutations_per_minute: 0,
            agency_mutations_per_minute: 0,
            sign_ups_per_address_per_hour: 0,
            sign_ins_per_address_per_minute: 0,
        }
    }
}
