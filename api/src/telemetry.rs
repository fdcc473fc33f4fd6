//! The tracing subscriber: readable lines in development, JSON in
//! production. The request span carries `request_id`, so every line logged
//! while serving a request names it.
//!
//! With `tracing.otlp_endpoint` set, spans also go to an OpenTelemetry
//! collector over OTLP/HTTP: the request's (joined to the caller's trace when
//! a W3C `traceparent` came with it), and beneath it the transactions and SQL
//! statements, Redis commands and storage calls, made here ([`SPANS`]). Those
//! are for traces only: the log never shows them, so a line logged inside
//! one still names the request's span and its id.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::Context as _;
use opentelemetry::{
    propagation::{Extractor, TextMapPropagator as _},
    trace::{Status, TraceContextExt as _, TracerProvider as _},
};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    runtime,
    trace::{BatchConfigBuilder, Sampler, SdkTracerProvider, span_processor_with_async_runtime::BatchSpanProcessor},
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{
    EnvFilter, Layer as _,
    filter::{FilterExt as _, LevelFilter, filter_fn},
    fmt::MakeWriter,
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

use crate::config::{LogFormat, TracingSettings};

/// The target of the spans made for traces alone: SQL, Redis, storage.
pub const SPANS: &str = "aggios::spans";

/// Finished spans waiting for export at most; more are dropped, so a
/// collector that is down or slow never grows the server's memory.
const QUEUE_SPANS: usize = 2048;

/// One export (an HTTP POST of up to 512 spans) may take this long.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// At exit, the spans still queued are sent within this, or left.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether spans are exported: request spans take the caller's trace
/// context only then.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Installs the global subscriber writing to `sink`, without traces. Call
/// once per process.
pub fn init<W>(format: LogFormat, filter: &str, sink: W) -> anyhow::Result<()>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    init_with_traces(format, filter, sink, &TracingSettings::default()).map(drop)
}

/// Installs the global subscriber writing to `sink`, and exporting spans
/// when `traces.otlp_endpoint` is set. Call once per process, inside the
/// Tokio runtime (the exporter runs on it), and [`Traces::flush`] before
/// exit.
pub fn init_with_traces<W>(format: LogFormat, filter: &str, sink: W, traces: &TracingSettings) -> anyhow::Result<Traces>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // The log's filter, and never the spans made for traces alone.
    let logged = EnvFilter::try_new(filter)?.and(filter_fn(|meta| meta.target() != SPANS));
    let log = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .with_writer(sink)
            .with_filter(logged)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_writer(sink).with_filter(logged).boxed(),
    };
    let provider = traces.traces_url().map(|url| provider(&url, traces)).transpose()?;
    // Spans and events at info and above, whatever the log shows: the
    // events become the spans' events ("served", warnings, errors).
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("aggios"))
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_filter(LevelFilter::INFO)
    });
    tracing_subscriber::registry().with(log).with(otel).try_init()?;
    EXPORTING.store(provider.is_some(), Ordering::Relaxed);
    Ok(Traces(provider))
}

/// The span exporter: batches on the Tokio runtime, sampled by trace id
/// unless the caller decided (parent-based).
fn provider(url: &str, traces: &TracingSettings) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .context("building the OTLP exporter (setting tracing.otlp_endpoint)")?;
    let batches = BatchConfigBuilder::default()
        .with_max_queue_size(QUEUE_SPANS)
        .with_max_export_timeout(EXPORT_TIMEOUT)
        .build();
    let processor = BatchSpanProcessor::builder(exporter, runtime::Tokio).with_batch_config(batches).build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(traces.sample_ratio))))
        .with_resource(Resource::builder().with_service_name(traces.service_name.clone()).build())
        .build())
}

/// The span exporter, if there is one: flush it before the process exits.
#[derive(Debug)]
pub struct Traces(Option<SdkTracerProvider>);

impl Traces {
    /// Sends the spans still queued and stops exporting (at most
    /// [`FLUSH_TIMEOUT`]). Spans ended afterwards are dropped.
    pub async fn flush(self) {
        let Some(provider) = self.0 else { return };
        EXPORTING.store(false, Ordering::Relaxed);
        // The SDK blocks its caller until the batch task, which runs on
        // this runtime, has sent the last batch: a blocking thread waits.
        let shutdown = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(FLUSH_TIMEOUT));
        match tokio::time::timeout(FLUSH_TIMEOUT + Duration::from_secs(1), shutdown).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "sending the last spans failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "sending the last spans failed"),
            Err(_) => tracing::warn!("the last spans were not sent within {FLUSH_TIMEOUT:?}"),
        }
    }
}

/// Makes the caller's trace, from its W3C `traceparent` (and `tracestate`)
/// headers, the parent of `span`, so the server's spans join it; its
/// sampling decision is followed. Without the headers, or while nothing is
/// exported, `span` starts a trace of its own. Call before `span` is entered.
pub fn continue_trace(span: &Span, headers: &poem::http::HeaderMap) {
    if !EXPORTING.load(Ordering::Relaxed) || !headers.contains_key("traceparent") {
        return;
    }
    let caller = TraceContextPropagator::new().extract(&Headers(headers));
    if caller.span().span_context().is_valid() {
        let _ = span.set_parent(caller);
    }
}

/// Records the answer's status on the request span (an error from 500 on).
pub fn record_status(span: &Span, status: u16) {
    if !EXPORTING.load(Ordering::Relaxed) {
        return;
    }
    span.set_attribute("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.set_status(Status::error(""));
    }
}

struct Headers<'a>(&'a poem::http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(poem::http::HeaderName::as_str).collect()
    }
}

/// The longest statement text a span keeps.
const MAX_QUERY_TEXT: usize = 2048;

/// One database transaction; its statements are its children.
pub fn db_transaction(system: &'static str) -> Span {
    tracing::info_span!(target: SPANS, "db.transaction", otel.name = "transaction", db.system.name = system, outcome = tracing::field::Empty)
}

/// One SQL statement of `transaction`, named by its first keyword. Its text
/// is the parameterised statement (values travel apart), cut at 2 KiB.
pub fn db_statement(transaction: &Span, system: &'static str, sql: &str) -> Span {
    let operation = sql.split_whitespace().next().unwrap_or("SQL");
    tracing::info_span!(
        target: SPANS,
        parent: transaction,
        "db.statement",
        otel.name = operation,
        otel.kind = "client",
        db.system.name = system,
        db.operation.name = operation,
        db.query.text = truncated(sql),
    )
}

fn truncated(text: &str) -> &str {
    if text.len() <= MAX_QUERY_TEXT {
        return text;
    }
    let mut end = MAX_QUERY_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// One Redis command (`GET`, `EVALSHA`, a pipeline's `MULTI`, …).
pub fn redis_command(command: &'static str) -> Span {
    tracing::info_span!(target: SPANS, "redis", otel.name = command, otel.kind = "client", db.system.name = "redis", db.operation.name = command)
}

/// One call to object storage, named as S3 names it (`PutObject`,
/// `GetObject`, …); on the local backend, a file operation of that name.
pub fn storage_call(s3: bool, operation: &'static str, key: &str) -> Span {
    if s3 {
        tracing::info_span!(
            target: SPANS,
            "s3",
            otel.name = %format!("S3.{operation}"),
            otel.kind = "client",
            rpc.system = "aws-api",
            rpc.service = "S3",
            rpc.method = operation,
            aws.s3.key = key,
        )
    } else {
        tracing::info_span!(target: SPANS, "storage", otel.name = operation, storage.backend = "local", storage.key = key)
    }
}

#[cfg(test)]
mod tests {
    use super::truncated;

    #[test]
    fn a_long_statement_is_cut_on_a_character_boundary() {
        let long = format!("SELECT '{}'", "é".repeat(2000));
        let cut = truncated(&long);
        assert!(cut.len() <= super::MAX_QUERY_TEXT && long.starts_with(cut));
        assert_eq!(truncated("SELECT 1"), "SELECT 1");
    }
}
