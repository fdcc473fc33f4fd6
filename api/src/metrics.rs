//! Prometheus metrics: the process's recorder (the `metrics` facade with
//! `metrics-exporter-prometheus`), and one function per thing measured, so
//! that every name, label and unit is written here once. Until
//! [`install`] runs (`metrics.listen` set) the facade has no recorder and
//! every call below costs next to nothing.
//!
//! Labels stay bounded: routes, outcome codes, host classes and storage
//! operations are fixed sets, and operation names are the first
//! `metrics.max_operation_names` valid names seen (later ones are `other`).

use std::{
    collections::HashSet,
    sync::{Mutex, OnceLock, RwLock},
    time::Duration,
};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
static NAMES: OnceLock<OperationNames> = OnceLock::new();

/// Installs the process's recorder (once; later calls return the same
/// handle) and describes every metric.
pub fn install(max_operation_names: usize) -> anyhow::Result<PrometheusHandle> {
    let mut slot = HANDLE.lock().map_err(|_| anyhow::anyhow!("the metrics recorder's lock was poisoned"))?;
    if let Some(handle) = slot.as_ref() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)?.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| anyhow::anyhow!("another metrics recorder is installed in this process"))?;
    let _ = NAMES.set(OperationNames { max: max_operation_names, seen: RwLock::new(HashSet::new()) });
    describe();
    gauge!("aggios_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    // Histograms are kept as buckets; summaries' quantiles would need upkeep.
    let upkeep = handle.clone();
    std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(5));
            upkeep.run_upkeep();
        }
    })?;
    *slot = Some(handle.clone());
    Ok(handle)
}

/// Whether a recorder is installed (work done only to label a metric can
/// be skipped otherwise).
pub fn enabled() -> bool {
    NAMES.get().is_some()
}

fn describe() {
    describe_gauge!("aggios_build_info", "Always 1; the version label says which build is running.");
    describe_counter!("aggios_http_requests_total", "HTTP requests answered, by route, GraphQL operation name, outcome code and host class.");
    describe_histogram!("aggios_http_request_duration_seconds", "Time from a request's head to its answer's head, by route and operation name.");
    describe_gauge!("aggios_http_requests_in_flight", "Requests being served.");
    describe_gauge!("aggios_db_pool_connections", "Database pool connections, by pool (primary, replica) and state (in_use, idle).");
    describe_gauge!("aggios_db_pool_max_connections", "The most connections a database pool may open.");
    describe_gauge!("aggios_db_pool_waiting", "Transactions waiting for a pooled connection.");
    describe_gauge!("aggios_db_replica_lag_seconds", "How long ago the primary stood where a read replica stands now.");
    describe_gauge!("aggios_db_replica_usable", "1 while queries read from the replica; 0 while it is down or behind.");
    describe_histogram!("aggios_db_pool_acquire_seconds", "Time to get a pooled connection and begin a transaction.");
    describe_counter!("aggios_redis_calls_total", "Redis calls, by outcome (ok, error, skipped while Redis is known down).");
    describe_histogram!("aggios_redis_call_duration_seconds", "Redis call time, connecting included.");
    describe_counter!("aggios_object_storage_calls_total", "Object storage calls, by operation and outcome.");
    describe_histogram!("aggios_object_storage_call_duration_seconds", "Object storage call time, by operation (a streamed put: the whole upload).");
    describe_counter!("aggios_rate_limit_refusals_total", "Requests refused by a rate limit, by budget.");
    describe_gauge!("aggios_websocket_connections", "Open subscription (graphql-transport-ws) connections.");
    describe_gauge!("aggios_subscriptions", "Running subscriptions.");
    describe_counter!("aggios_subscription_messages_total", "Subscription results queued for delivery.");
}

/// The operation names a process labels with.
struct OperationNames {
    max: usize,
    seen: RwLock<HashSet<String>>,
}

/// The label for an operation: its name if it is one of the first names
/// seen, `anonymous` without one, `other` beyond the bound.
pub fn operation_label(name: Option<&str>) -> String {
    let Some(names) = NAMES.get() else { return String::new() };
    let Some(name) = name else { return "anonymous".into() };
    let valid = (1..=64).contains(&name.len())
        && name.bytes().enumerate().all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
    if !valid {
        return "other".into();
    }
    if names.seen.read().is_ok_and(|s| s.contains(name)) {
        return name.to_owned();
    }
    let Ok(mut seen) = names.seen.write() else { return "other".into() };
    if seen.len() < names.max || seen.contains(name) {
        seen.insert(name.to_owned());
        return name.to_owned();
    }
    "other".into()
}

/// One answered request.
pub fn request(route: &'static str, operation: String, code: String, host_class: &'static str, took: Duration) {
    histogram!("aggios_http_request_duration_seconds", "route" => route, "operation" => operation.clone()).record(took.as_secs_f64());
    counter!("aggios_http_requests_total", "route" => route, "operation" => operation, "code" => code, "host" => host_class).increment(1);
}

/// Counts a request in flight until dropped.
pub struct InFlight(());

impl InFlight {
    pub fn enter() -> Self {
        gauge!("aggios_http_requests_in_flight").increment(1.0);
        Self(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        gauge!("aggios_http_requests_in_flight").decrement(1.0);
    }
}

/// A pool's state, read when scraped: `primary`, or a replica's
/// `host:port/database`.
pub fn pool(pool: &str, in_use: u32, idle: u32, max: u32) {
    gauge!("aggios_db_pool_connections", "pool" => pool.to_owned(), "state" => "in_use").set(f64::from(in_use));
    gauge!("aggios_db_pool_connections", "pool" => pool.to_owned(), "state" => "idle").set(f64::from(idle));
    gauge!("aggios_db_pool_max_connections", "pool" => pool.to_owned()).set(f64::from(max));
}

/// A read replica's lag behind the primary, as the monitor last saw it.
pub fn replica(name: &str, lag_secs: f64) {
    gauge!("aggios_db_replica_lag_seconds", "replica" => name.to_owned()).set(lag_secs);
}

/// Whether queries read from the replica now (fresh enough, answering).
pub fn replica_usable(name: &str, usable: bool) {
    gauge!("aggios_db_replica_usable", "replica" => name.to_owned()).set(if usable { 1.0 } else { 0.0 });
}

/// A transaction waiting for its connection, until dropped; then its wait.
pub struct Acquiring {
    started: std::time::Instant,
}

impl Acquiring {
    pub fn start() -> Self {
        gauge!("aggios_db_pool_waiting").increment(1.0);
        Self { started: std::time::Instant::now() }
    }
}

impl Drop for Acquiring {
    fn drop(&mut self) {
        gauge!("aggios_db_pool_waiting").decrement(1.0);
        histogram!("aggios_db_pool_acquire_seconds").record(self.started.elapsed().as_secs_f64());
    }
}

/// One Redis call: `ok`, `error`, or `skipped` (Redis known down).
pub fn redis_call(outcome: &'static str, took: Duration) {
    counter!("aggios_redis_calls_total", "outcome" => outcome).increment(1);
    if outcome != "skipped" {
        histogram!("aggios_redis_call_duration_seconds").record(took.as_secs_f64());
    }
}

/// One object storage call, named as S3 names it (`PutObject`, ...).
pub fn storage_call(operation: &'static str, ok: bool, took: Duration) {
    let outcome = if ok { "ok" } else { "error" };
    counter!("aggios_object_storage_calls_total", "operation" => operation, "outcome" => outcome).increment(1);
    histogram!("aggios_object_storage_call_duration_seconds", "operation" => operation).record(took.as_secs_f64());
}

/// A request refused by the rate limit `budget`.
pub fn rate_limited(budget: &'static str) {
    counter!("aggios_rate_limit_refusals_total", "budget" => budget).increment(1);
}

/// A subscription connection opened (+1) or closed (-1).
pub fn websocket_connections(delta: f64) {
    gauge!("aggios_websocket_connections").increment(delta);
}

/// Subscriptions started (+n) or ended (-n).
pub fn subscriptions(delta: f64) {
    gauge!("aggios_subscriptions").increment(delta);
}

/// Results queued for subscribers.
pub fn subscription_messages(n: u64) {
    counter!("aggios_subscription_messages_total").increment(n);
}
