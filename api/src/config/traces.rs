//! `[tracing]`: OpenTelemetry traces, sent over OTLP/HTTP (protobuf) to a
//! collector. Off unless `otlp_endpoint` is set.

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TracingSettings {
    /// The collector's OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318`;
    /// spans are POSTed to `{otlp_endpoint}/v1/traces`. Unset: no traces.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of every span.
    pub service_name: String,
    /// The share of new traces kept (0 to 1). A request whose `traceparent`
    /// says whether its caller sampled it follows the caller instead.
    pub sample_ratio: f64,
}

impl Default for TracingSettings {
    fn default() -> Self {
        Self { otlp_endpoint: None, service_name: "aggios".into(), sample_ratio: 1.0 }
    }
}

impl TracingSettings {
    /// Where spans are sent: the endpoint with the OTLP traces path.
    pub fn traces_url(&self) -> Option<String> {
        self.otlp_endpoint.as_deref().map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(endpoint) = &self.otlp_endpoint {
            let url = url::Url::parse(endpoint).map_err(|e| invalid("tracing.otlp_endpoint", format!("not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(invalid("tracing.otlp_endpoint", "must be an http:// or https:// URL such as http://127.0.0.1:4318"));
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(invalid("tracing.otlp_endpoint", "the collector's base URL takes no query; /v1/traces is added to it"));
            }
        }
        if self.service_name.trim().is_empty() {
            return Err(invalid("tracing.service_name", "must not be empty"));
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(invalid("tracing.sample_ratio", "must be between 0 and 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::TracingSettings;

    #[test]
    fn the_traces_path_is_added_to_the_endpoint() {
        let mut t = TracingSettings { otlp_endpoint: Some("http://127.0.0.1:4318/".into()), ..TracingSettings::default() };
        assert_eq!(t.traces_url().as_deref(), Some("http://127.0.0.1:4318/v1/traces"));
        t.otlp_endpoint = Some("https://otel.example.com/prefix".into());
        assert_eq!(t.traces_url().as_deref(), Some("https://otel.example.com/prefix/v1/traces"));
        assert!(TracingSettings::default().traces_url().is_none());
    }

    #[test]
    fn a_bad_endpoint_or_ratio_is_refused_by_name() {
        for (endpoint, ratio, key) in [
            (Some("127.0.0.1:4318"), 1.0, "tracing.otlp_endpoint"),
            (Some("grpc://collector:4317"), 1.0, "tracing.otlp_endpoint"),
            (None, 1.5, "tracing.sample_ratio"),
            (None, -0.1, "tracing.sample_ratio"),
            (None, f64::NAN, "tracing.sample_ratio"),
        ] {
            let t = TracingSettings { otlp_endpoint: endpoint.map(str::to_owned), sample_ratio: ratio, ..TracingSettings::default() };
            let err = t.validate().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(key) && err.contains(&key.replace('.', "_").to_uppercase()), "{endpoint:?} {ratio}: {err}");
        }
    }
}
