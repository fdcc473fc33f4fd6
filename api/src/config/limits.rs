//! `[limits]`: what one GraphQL operation may hold and how long it may run
//! (enforced by `graphql::limits`). Its defaults and checks live here with
//! it; the batch size is `server.max_batch_operations`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSettings {
    /// Aliased fields in one operation, its fragments counted where spread
    /// (GraphQL Armor's default: 15).
    pub max_aliases: usize,
    /// Fields selected at the root of one operation (`__typename` aside).
    pub max_root_fields: usize,
    /// Directives in one operation, its fragments counted where spread
    /// (GraphQL Armor's default: 50).
    pub max_directives: usize,
    /// Lexical tokens in the whole document, counted before it is parsed
    /// (GraphQL Armor's default: 1000).
    pub max_tokens: usize,
    /// How deep fields may nest; introspection's own nesting is not counted.
    pub max_depth: usize,
    /// What one operation may cost: a field 1, a list its page size times
    /// what it selects, a download link 10.
    pub max_cost: usize,
    /// How long one operation may execute before it is ended and its
    /// transaction rolled back (`OPERATION_TIMEOUT`).
    pub operation_timeout_ms: u64,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        Self {
            max_aliases: 15,
            max_root_fields: 10,
            max_directives: 50,
            max_tokens: 1_000,
            max_depth: 12,
            max_cost: 3_000,
            operation_timeout_ms: 30_000,
        }
    }
}

impl LimitsSettings {
    pub fn operation_timeout(&self) -> Duration {
        Duration::from_millis(self.operation_timeout_ms)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let at_least_one = [
            ("limits.max_aliases", self.max_aliases),
            ("limits.max_root_fields", self.max_root_fields),
            ("limits.max_directives", self.max_directives),
            ("limits.max_tokens", self.max_tokens),
            ("limits.max_depth", self.max_depth),
            ("limits.max_cost", self.max_cost),
        ];
        if let Some(&(key, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return Err(invalid(key, "must be at least 1"));
        }
        if !(1..=3_600_000).contains(&self.operation_timeout_ms) {
            return Err(invalid("limits.operation_timeout_ms", "must be between 1 ms and an hour"));
        }
        Ok(())
    }
}
