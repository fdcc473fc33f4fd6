//! `[persisted_queries]`: automatic persisted queries (APQ), trusted
//! documents and the cache of parsed documents. A section of its own so the
//! bounds of everything a client can make the server keep are in one place.

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PersistedQuerySettings {
    /// The largest document text kept anywhere: an APQ registration larger
    /// than this still runs but is not stored, a parsed document is not
    /// cached, and a manifest operation is refused.
    pub max_document_bytes: usize,
    /// How long an APQ registration lives (its Redis TTL, and in process).
    pub ttl_secs: u64,
    /// Registered text kept in process, least recently used first out: the
    /// store itself on the embedded default, a copy in front of Redis
    /// otherwise.
    pub local_max_bytes: usize,
    /// Text of the documents whose parsed and validated form is kept in
    /// process (least recently used first out); 0 turns that cache off. The
    /// parsed form takes about 14 times its text in memory (measured with
    /// alias-heavy documents).
    pub document_cache_bytes: usize,
    /// How often each replica re-reads an agency's trusted-documents mode
    /// and active manifest (the replica that took the change sees it at
    /// once).
    pub trusted_refresh_secs: u64,
}

impl Default for PersistedQuerySettings {
    fn default() -> Self {
        Self {
            max_document_bytes: 64 * 1024,
            ttl_secs: 24 * 3600,
            local_max_bytes: 32 * 1024 * 1024,
            document_cache_bytes: 4 * 1024 * 1024,
            trusted_refresh_secs: 5,
        }
    }
}

impl PersistedQuerySettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_document_bytes == 0 {
            return Err(invalid("persisted_queries.max_document_bytes", "must be at least 1"));
        }
        if self.ttl_secs == 0 {
            return Err(invalid("persisted_queries.ttl_secs", "must be at least 1"));
        }
        if self.local_max_bytes < self.max_document_bytes {
            return Err(invalid("persisted_queries.local_max_bytes", "must be at least persisted_queries.max_document_bytes"));
        }
        if self.trusted_refresh_secs == 0 {
            return Err(invalid("persisted_queries.trusted_refresh_secs", "must be at least 1"));
        }
        Ok(())
    }
}
