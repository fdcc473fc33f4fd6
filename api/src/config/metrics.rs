//! `[metrics]`: the Prometheus endpoint, on a listener of its own so that
//! the public router (and so Traefik) never serves it.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Where `GET /metrics` listens (e.g. `0.0.0.0:9464` in a container);
    /// unset: no metrics are kept or served.
    pub listen: Option<SocketAddr>,
    /// Distinct operation names a process labels its request metrics with;
    /// names seen after these are counted as `other`, so a client inventing
    /// names cannot grow the series without bound.
    pub max_operation_names: usize,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self { listen: None, max_operation_names: 200 }
    }
}

impl MetricsSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_operation_names == 0 || self.max_operation_names > 10_000 {
            return Err(invalid("metrics.max_operation_names", "must be between 1 and 10000"));
        }
        Ok(())
    }
}
