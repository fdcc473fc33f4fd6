//! Metrics, from the operator's side: the real binary on PostgreSQL, Redis
//! and S3 with `metrics.listen` set serves Prometheus text there (and not on
//! the public port), `promtool check metrics` accepts it, operation names
//! stay bounded, and a real Prometheus scrapes it.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use crate::helpers::*;

/// A running `aggios serve` with metrics, and what it printed.
struct Server {
    process: tokio::process::Child,
    api: String,
    metrics: String,
    _db: TestDatabase,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(max_operation_names: usize) -> Self {
        let db = TestDatabase::create().await;
        let dir = tempfile::tempdir().unwrap();
        let s3 = s3();
        let mut process = crate::cli::aggios()
            .current_dir(dir.path())
            .arg("serve")
            .env("AGGIOS_SERVER_PORT", "0")
            .env("AGGIOS_SERVER_BASE_DOMAIN", BASE)
            .env("AGGIOS_LOG_LEVEL", "warn")
            .env("AGGIOS_METRICS_LISTEN", "127.0.0.1:0")
            .env("AGGIOS_METRICS_MAX_OPERATION_NAMES", max_operation_names.to_string())
            .env("AGGIOS_DATABASE_URL", &db.url)
            .env("AGGIOS_DATABASE_MIGRATE_ON_START", "true")
            .env("AGGIOS_REDIS_URL", redis_url())
            .env("AGGIOS_REDIS_KEY_PREFIX", format!("aggios-metrics-{}", uuid::Uuid::now_v7()))
            .env("AGGIOS_STORAGE_BACKEND", "s3")
            .env("AGGIOS_STORAGE_S3_ENDPOINT", &s3.endpoint)
            .env("AGGIOS_STORAGE_S3_BUCKET", &s3.bucket)
            .env("AGGIOS_STORAGE_S3_ACCESS_KEY_ID", &s3.access_key)
            .env("AGGIOS_STORAGE_S3_SECRET_ACCESS_KEY", &s3.secret_key)
            .env("AGGIOS_RATE_LIMITS_ENABLED", "true")
            .env("AGGIOS_RATE_LIMITS_SIGN_UPS_PER_ADDRESS_PER_HOUR", "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(process.stdout.take().unwrap()).lines();
        let (mut api, mut metrics) = (None, None);
        while metrics.is_none() {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap().expect("the server printed its addresses");
            if let Some(a) = line.strip_prefix("Aggios is listening on ") {
                api = Some(a.trim().to_owned());
            }
            if let Some(m) = line.trim().strip_prefix("Metrics:") {
                metrics = Some(m.trim().to_owned());
            }
        }
        Self { process, api: api.unwrap(), metrics: metrics.unwrap(), _db: db, _dir: dir }
    }

    async fn gql(&self, host: &str, body: Value) -> Value {
        let resp = reqwest::Client::new()
            .post(format!("{}/graphql", self.api))
            .header("host", host)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
    }

    async fn scrape(&self) -> (u16, String, String) {
        let resp = reqwest::get(&self.metrics).await.unwrap();
        let status = resp.status().as_u16();
        let ctype = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        (status, ctype, resp.text().await.unwrap())
    }
}

/// The value of the one series of `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

const SIGN_UP: &str = "mutation SignUp($i: SignUpInput!) { signUp(input: $i) { accessToken } }";

fn sign_up(sub: &str) -> Value {
    json!({ "query": SIGN_UP, "operationName": "SignUp", "variables": { "i": {
        "agencyName": format!("Agency {sub}"), "subdomain": sub, "email": format!("owner@{sub}.com"),
        "password": PASSWORD, "firstName": "Olga", "lastName": "Owner" } } })
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_in_a_format_promtool_accepts_with_bounded_operation_names() {
    let server = Server::start(3).await;
    let signed = server.gql(&format!("api.{BASE}"), sign_up("metra")).await;
    let token = signed["data"]["signUp"]["accessToken"].as_str().unwrap_or_else(|| panic!("{signed}")).to_owned();
    let agency = format!("metra.{BASE}");
    // A second sign-up from the same address is over its budget of one.
    let refused = server.gql(&format!("api.{BASE}"), sign_up("metrb")).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{refused}");
    // Named queries on the agency's host: two more names fill the bound of
    // three (SignUp was the first); later names are `other`.
    let client = reqwest::Client::new();
    for name in ["ClientsPage", "Who", "Extra1", "Extra2"] {
        let body = json!({ "query": format!("query {name} {{ clients(first: 2) {{ edges {{ node {{ id }} }} }} }}") });
        let resp = client
            .post(format!("{}/graphql", server.api))
            .header("host", &agency)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let answer: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert!(answer["errors"].is_null(), "{answer}");
    }
    let anonymous = server.gql(&agency, json!({ "query": "{ me { id } }" })).await;
    assert_eq!(anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{anonymous}");
    // Readiness reaches the database, Redis and S3.
    assert_eq!(reqwest::get(format!("{}/readyz", server.api)).await.unwrap().status(), 200);

    let (status, ctype, text) = server.scrape().await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let requests = "aggios_http_requests_total";
    assert_eq!(sample(&text, requests, &[r#"operation="SignUp""#, r#"code="OK""#, r#"host="api""#]), Some(1.0), "{text}");
    assert_eq!(sample(&text, requests, &[r#"operation="SignUp""#, r#"code="RATE_LIMITED""#]), Some(1.0), "{text}");
    assert_eq!(sample(&text, requests, &[r#"operation="ClientsPage""#, r#"code="OK""#, r#"host="agency""#]), Some(1.0), "{text}");
    assert_eq!(sample(&text, requests, &[r#"operation="Who""#]), Some(1.0), "{text}");
    assert_eq!(sample(&text, requests, &[r#"operation="other""#, r#"code="OK""#]), Some(2.0), "{text}");
    assert!(!text.contains("Extra1") && !text.contains("Extra2"), "names past the bound are `other`: {text}");
    assert_eq!(sample(&text, requests, &[r#"operation="anonymous""#, r#"code="UNAUTHENTICATED""#]), Some(1.0), "{text}");
    assert_eq!(sample(&text, requests, &[r#"route="health""#, r#"code="OK""#]), Some(1.0), "{text}");
    assert!(sample(&text, "aggios_http_request_duration_seconds_bucket", &[r#"operation="ClientsPage""#, r#"le="+Inf""#]) == Some(1.0), "{text}");
    assert_eq!(sample(&text, "aggios_rate_limit_refusals_total", &[r#"budget="#]), Some(1.0), "{text}");
    assert!(sample(&text, "aggios_db_pool_max_connections", &[r#"pool="primary""#]).is_some_and(|n| n >= 1.0), "{text}");
    assert!(sample(&text, "aggios_db_pool_connections", &[r#"pool="primary""#, r#"state="idle""#]).is_some(), "{text}");
    assert!(sample(&text, "aggios_db_pool_acquire_seconds_count", &[]).is_some_and(|n| n >= 1.0), "{text}");
    assert!(sample(&text, "aggios_redis_calls_total", &[r#"outcome="ok""#]).is_some_and(|n| n >= 1.0), "{text}");
    assert!(sample(&text, "aggios_object_storage_calls_total", &[r#"operation="ListObjectsV2""#, r#"outcome="ok""#]).is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(sample(&text, "aggios_build_info", &[&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))]), Some(1.0), "{text}");

    // promtool's own check of the exposition format and naming.
    let mut promtool = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's `prometheus`; scripts/test.sh installs it) is on PATH");
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).await.unwrap();
    let checked = promtool.wait_with_output().await.unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // Not on the public port.
    let public = reqwest::get(format!("{}/metrics", server.api)).await.unwrap();
    assert_eq!(public.status(), 404);
    drop(server.process);
}

#[tokio::test]
async fn a_real_prometheus_scrapes_a_running_server() {
    let server = Server::start(50).await;
    let signed = server.gql(&format!("api.{BASE}"), sign_up("scraped")).await;
    assert!(signed["data"]["signUp"]["accessToken"].is_string(), "{signed}");
    let dir = tempfile::tempdir().unwrap();
    let target = server.metrics.trim_start_matches("http://").trim_end_matches("/metrics").to_owned();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: aggios\n    static_configs:\n      - targets: ['{target}']\n"),
    )
    .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let _prometheus = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus (Debian's `prometheus`; scripts/test.sh installs it) is on PATH");
    let query = |q: &'static str| {
        let url = format!("http://127.0.0.1:{port}/api/v1/query");
        async move {
            let url = url::Url::parse_with_params(&url, &[("query", q)]).ok()?;
            let resp = reqwest::get(url).await.ok()?;
            let body: Value = serde_json::from_slice(&resp.bytes().await.ok()?).ok()?;
            body["data"]["result"].as_array().cloned()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = query(r#"up{job="aggios"}"#).await;
        let signups = query(r#"aggios_http_requests_total{job="aggios",operation="SignUp",code="OK"}"#).await;
        if let (Some(up), Some(signups)) = (&up, &signups)
            && up.first().is_some_and(|s| s["value"][1] == "1")
            && signups.first().is_some_and(|s| s["value"][1] == "1")
        {
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus never scraped the server: up {up:?}, sign-ups {signups:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(server.process);
}
