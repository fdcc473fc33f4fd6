//! OpenTelemetry traces, from the real binary (the subscriber is the
//! process's own) to a collector played here: a request's `traceparent`
//! makes the server's spans part of the caller's trace, SQL statements,
//! Redis commands and S3 calls beneath the request's span; without
//! `tracing.otlp_endpoint` nothing is sent.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value},
    trace::v1::Span,
};
use poem::{EndpointExt as _, Request, Response, listener::TcpAcceptor};
use prost::Message as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};

use crate::helpers::*;

/// What the collector received: each span with its resource's
/// `service.name`, and how many exports came.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    posts: Arc<AtomicUsize>,
}

impl Collector {
    /// Listens on a free port; returns the OTLP/HTTP base URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = self.clone();
        let export = poem::endpoint::make(move |req: Request| {
            let me = me.clone();
            async move { me.export(req).await }
        });
        let routes = poem::Route::new().at("/v1/traces", poem::post(export.boxed()));
        let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(routes));
        format!("http://127.0.0.1:{port}")
    }

    async fn export(&self, req: Request) -> Response {
        assert_eq!(req.content_type(), Some("application/x-protobuf"), "OTLP/HTTP with protobuf");
        let body = req.into_body().into_bytes().await.unwrap();
        let export = ExportTraceServiceRequest::decode(body).unwrap();
        self.posts.fetch_add(1, Ordering::SeqCst);
        let mut spans = self.spans.lock().unwrap();
        for resource in export.resource_spans {
            let service = resource.resource.as_ref().and_then(|r| string(&r.attributes, "service.name")).unwrap_or_default();
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        // An empty ExportTraceServiceResponse: all accepted.
        Response::builder().content_type("application/x-protobuf").body(Vec::<u8>::new())
    }

    fn spans(&self) -> Vec<(String, Span)> {
        self.spans.lock().unwrap().clone()
    }
}

fn string(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref() {
        Some(AnyValue { value: Some(any_value::Value::StringValue(s)) }) => Some(s.clone()),
        Some(AnyValue { value: Some(any_value::Value::IntValue(i)) }) => Some(i.to_string()),
        _ => None,
    })
}

fn attr(span: &Span, key: &str) -> Option<String> {
    string(&span.attributes, key)
}

/// A caller's trace: the `traceparent` it sends, its trace id and its span id.
fn caller() -> (String, String, String) {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    (format!("00-{trace}-{parent}-01"), trace, parent)
}

/// The real `aggios serve`, with `env`; its address, once it listens, and its
/// stderr, read to the end meanwhile.
struct Server {
    child: tokio::process::Child,
    url: String,
    stderr: tokio::task::JoinHandle<String>,
}

impl Server {
    async fn start(dir: &std::path::Path, env: &[(&str, String)]) -> Self {
        let mut cmd = crate::cli::aggios();
        cmd.current_dir(dir).arg("serve").env("AGGIOS_SERVER_PORT", "0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let mut err = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut all = String::new();
            let _ = err.read_to_string(&mut all).await;
            all
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap();
            let Some(line) = line else {
                panic!("the server stopped before listening: {}", stderr.await.unwrap());
            };
            if let Some(addr) = line.strip_prefix("Aggios is listening on ") {
                break addr.trim().to_owned();
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, url, stderr }
    }

    async fn post(&self, host: &str, headers: &[(&str, &str)], body: Value) -> Value {
        let mut req = reqwest::Client::new()
            .post(format!("{}/graphql", self.url))
            .header("host", host)
            .header("content-type", "application/json")
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
    }

    /// SIGTERM, the way an orchestrator stops it; its log once it exited.
    async fn stop(mut self) -> String {
        let pid = self.child.id().unwrap().to_string();
        assert!(tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap().success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.unwrap().unwrap();
        let log = self.stderr.await.unwrap();
        assert!(status.success(), "exit after SIGTERM: {status:?}\n{log}");
        log
    }
}

/// `span` and every span above it in its trace, nearest first.
fn ancestry<'a>(span: &'a Span, by_id: &HashMap<Vec<u8>, &'a Span>) -> Vec<&'a Span> {
    let mut chain = vec![span];
    while let Some(parent) = by_id.get(&chain[chain.len() - 1].parent_span_id) {
        chain.push(parent);
    }
    chain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_makes_the_request_its_sql_redis_and_s3_spans_part_of_the_callers_trace() {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let db = TestDatabase::create().await;
    let s3 = s3();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[
        ("AGGIOS_TRACING_OTLP_ENDPOINT", endpoint),
        ("AGGIOS_TRACING_SERVICE_NAME", "aggios-traces-test".into()),
        ("AGGIOS_DATABASE_URL", db.url.clone()),
        ("AGGIOS_DATABASE_MIGRATE_ON_START", "true".into()),
        ("AGGIOS_REDIS_URL", redis_url()),
        ("AGGIOS_REDIS_KEY_PREFIX", format!("aggios-test-{}", uuid::Uuid::now_v7())),
        ("AGGIOS_STORAGE_BACKEND", "s3".into()),
        ("AGGIOS_STORAGE_S3_ENDPOINT", s3.endpoint),
        ("AGGIOS_STORAGE_S3_BUCKET", s3.bucket),
        ("AGGIOS_STORAGE_S3_ACCESS_KEY_ID", s3.access_key),
        ("AGGIOS_STORAGE_S3_SECRET_ACCESS_KEY", s3.secret_key),
        // Statements are logged inside their spans: the lines must still
        // name the request's span.
        ("AGGIOS_LOG_FORMAT", "json".into()),
        ("AGGIOS_LOG_LEVEL", "info,sqlx=debug".into()),
    ])
    .await;

    let signed = server
        .post("localhost", &[], json!({
            "query": "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }",
            "variables": { "i": { "agencyName": "Traced", "subdomain": "traced", "email": "owner@traced.com",
                "password": PASSWORD, "firstName": "Olga", "lastName": "Owner" } },
        }))
        .await;
    let token = signed["data"]["signUp"]["accessToken"].as_str().unwrap_or_else(|| panic!("{signed}")).to_owned();

    let (traceparent, trace_id, caller_span) = caller();
    let request_id = format!("traced-{}", uuid::Uuid::now_v7());
    let me = server
        .post("traced.localhost", &[
            ("authorization", &format!("Bearer {token}")),
            ("traceparent", &traceparent),
            ("x-request-id", &request_id),
        ], json!({ "query": "{ me { email } }" }))
        .await;
    assert_eq!(me["data"]["me"]["email"], "owner@traced.com", "{me}");

    // Readiness lists a prefix of the bucket: an S3 call in a request.
    let (ready_parent, ready_trace, ready_caller) = caller();
    let ready = reqwest::Client::new()
        .get(format!("{}/readyz", server.url))
        .header("traceparent", &ready_parent)
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    // The last batch goes out on the way down.
    let log = server.stop().await;
    let spans = collector.spans();
    assert!(!spans.is_empty(), "no span reached the collector");
    assert!(spans.iter().all(|(service, _)| service == "aggios-traces-test"), "service.name");

    let in_trace = |trace: &str| -> Vec<&Span> { spans.iter().map(|(_, s)| s).filter(|s| hex::encode(&s.trace_id) == trace).collect() };
    let traced = in_trace(&trace_id);
    let by_id: HashMap<Vec<u8>, &Span> = traced.iter().map(|s| (s.span_id.clone(), *s)).collect();
    let request = traced
        .iter()
        .find(|s| s.name == "request")
        .unwrap_or_else(|| panic!("no request span in the caller's trace: {traced:#?}"));
    assert_eq!(hex::encode(&request.parent_span_id), caller_span, "the caller's span is the request span's parent");
    assert_eq!(attr(request, "request_id").as_deref(), Some(request_id.as_str()));
    assert_eq!(attr(request, "http.response.status_code").as_deref(), Some("200"));
    let under_request = |s: &Span| ancestry(s, &by_id).iter().any(|a| a.span_id == request.span_id);

    let sql: Vec<_> = traced.iter().filter(|s| attr(s, "db.system.name").as_deref() == Some("postgresql")).collect();
    let statements: Vec<_> = sql.iter().filter(|s| attr(s, "db.query.text").is_some()).collect();
    assert!(!statements.is_empty(), "no SQL statement span: {traced:#?}");
    assert!(statements.iter().all(|s| under_request(s)), "a statement outside the request: {statements:#?}");
    assert!(statements.iter().any(|s| s.name == "SELECT" && attr(s, "db.query.text").is_some_and(|q| q.contains("users"))), "{statements:#?}");
    let transactions: Vec<_> = sql.iter().filter(|s| s.name == "transaction").collect();
    assert!(!transactions.is_empty() && transactions.iter().all(|s| under_request(s)), "{sql:#?}");

    let redis: Vec<_> = traced.iter().filter(|s| attr(s, "db.system.name").as_deref() == Some("redis")).collect();
    assert!(!redis.is_empty(), "no Redis span: {traced:#?}");
    assert!(redis.iter().all(|s| under_request(s)), "a Redis call outside the request: {redis:#?}");
    assert!(redis.iter().all(|s| attr(s, "db.operation.name").as_deref() == Some(s.name.as_str())));

    let ready = in_trace(&ready_trace);
    let by_id: HashMap<Vec<u8>, &Span> = ready.iter().map(|s| (s.span_id.clone(), *s)).collect();
    let request = ready.iter().find(|s| s.name == "request").unwrap_or_else(|| panic!("{ready:#?}"));
    assert_eq!(hex::encode(&request.parent_span_id), ready_caller);
    let s3_calls: Vec<_> = ready.iter().filter(|s| attr(s, "rpc.service").as_deref() == Some("S3")).collect();
    assert!(!s3_calls.is_empty(), "no S3 span: {ready:#?}");
    for call in &s3_calls {
        assert_eq!(call.name, "S3.ListObjectsV2");
        assert!(ancestry(call, &by_id).iter().any(|a| a.span_id == request.span_id), "{call:#?}");
    }

    // The log still names the request on every line of it, those logged
    // inside a statement's span included.
    let lines: Vec<Value> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let of_request: Vec<_> = lines.iter().filter(|l| l["span"]["request_id"] == request_id.as_str()).collect();
    assert!(of_request.iter().any(|l| l["target"] == "sqlx::query"), "no statement logged in the request: {of_request:#?}");
    assert!(of_request.iter().any(|l| l["message"] == "served"), "{of_request:#?}");
    for line in lines.iter().filter(|l| l.to_string().contains(&request_id)) {
        assert_eq!(line["span"]["request_id"], request_id.as_str(), "{line}");
    }
    assert!(lines.iter().all(|l| l["span"]["name"] != "db.statement" && l["span"]["name"] != "redis"), "a trace-only span in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_otlp_endpoint_nothing_is_exported() {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let dir = tempfile::tempdir().unwrap();
    // The SDK's own variables do not turn exporting on: only the setting does.
    let server = Server::start(dir.path(), &[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", format!("{endpoint}/v1/traces")),
    ])
    .await;
    let (traceparent, _, _) = caller();
    let answer = server.post("localhost", &[("traceparent", &traceparent)], json!({ "query": "{ __typename }" })).await;
    assert_eq!(answer["data"]["__typename"], "Query", "{answer}");
    server.stop().await;
    assert_eq!(collector.posts.load(Ordering::SeqCst), 0, "spans were exported: {:?}", collector.spans());
}
