//! Internal errors reach the client as an opaque message with an error id;
//! the cause goes to the log, on a JSON line that carries the request id.

use std::{
    io::Write,
    sync::{Arc, Mutex, OnceLock},
};

use aggios::config::LogFormat;

use crate::helpers::*;

#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process-wide subscriber of this test binary, writing JSON lines here.
pub(crate) fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let sink = captured.clone();
        aggios::telemetry::init(LogFormat::Json, "info", move || sink.clone()).unwrap();
        captured
    })
}

pub(crate) fn lines_with(needle: &str) -> Vec<serde_json::Value> {
    let bytes = logs().0.lock().unwrap().clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| l.contains(needle))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[tokio::test]
async fn an_internal_error_is_opaque_to_the_client_and_logged_with_the_request_id() {
    logs();
    let app = TestApp::new(Backend::Sqlite).await;
    app.create_tenant("acme").await;
    // A bug's worth of broken schema under the running app (a database that
    // is merely gone answers SERVICE_UNAVAILABLE instead).
    use sea_orm::ConnectionTrait as _;
    app.state.db.platform().execute_unprepared("ALTER TABLE tenants RENAME TO tenants_gone").await.unwrap();

    let request_id = format!("log-test-{}", uuid::Uuid::now_v7());
    let a = app.gql_with("acme.aggios.test", &[("x-request-id", &request_id)], "{ tenant { id } }").await;
    assert_eq!(a.status, 500);
    assert_eq!(a.code(), Some("INTERNAL"));
    let message = a.body["errors"][0]["message"].as_str().unwrap().to_lowercase();
    let error_id = a.body["errors"][0]["extensions"]["errorId"].as_str().unwrap().to_owned();
    assert!(message.contains(&error_id), "{message}");
    for leak in ["tenants", "no such table", "sqlite", "sqlx", "select"] {
        assert!(!message.contains(leak), "the client sees internals: {message}");
    }

    let lines = lines_with(&request_id);
    assert!(lines.len() >= 2, "expected the error and the access line: {lines:?}");
    for line in &lines {
        assert_eq!(line["span"]["request_id"], request_id.as_str(), "{line}");
    }
    let error_line = lines.iter().find(|l| l["error_id"] == error_id.as_str()).expect("the cause is logged with the error id");
    assert!(error_line["error"].as_str().is_some_and(|e| e.to_lowercase().contains("no such table")), "{error_line}");
    assert!(lines.iter().any(|l| l["message"] == "served" && l["status"] == 500));
}

#[tokio::test]
async fn sql_is_logged_at_debug_so_info_shows_none_and_a_slow_statement_is_a_warning() {
    logs();
    let app = TestApp::builder(Backend::Postgres).with_settings(|s| s.log.slow_statement_ms = 100).build().await;
    use sea_orm::ConnectionTrait as _;
    let marker = format!("sqllog{}", uuid::Uuid::now_v7().simple());
    let db = app.state.db.platform();
    db.execute_unprepared(&format!("SELECT 1 AS {marker}_fast")).await.unwrap();
    db.execute_unprepared(&format!("SELECT pg_sleep(0.3) AS {marker}_slow")).await.unwrap();
    let fast = lines_with(&format!("{marker}_fast"));
    assert!(fast.is_empty(), "a statement was logged at info: {fast:?}");
    let slow = lines_with(&format!("{marker}_slow"));
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert_eq!(slow[0]["level"], "WARN", "{}", slow[0]);
}
