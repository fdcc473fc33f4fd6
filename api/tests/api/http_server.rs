//! The HTTP server over a real socket: request heads, idle keep-alive
//! connections and stalled bodies are timed out, and connections are
//! bounded.

use std::time::{Duration, Instant};

use aggios::{config::Settings, startup::Application};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    sync::oneshot,
};

use crate::helpers::*;

struct Running {
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(settings: Settings) -> Self {
        let app = Application::build(settings).await.unwrap();
        let port = app.local_addr().unwrap().port();
        let (tx, rx) = oneshot::channel::<()>();
        let done = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        Self { port, stop: Some(tx), done }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(("127.0.0.1", self.port)).await.unwrap()
    }

    async fn shut_down(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = self.done.await;
    }
}

async fn server(tweak: impl FnOnce(&mut Settings) + 'static) -> (TestApp, Running) {
    let app = TestApp::builder(Backend::Sqlite)
        .with_settings(|s| {
            s.server.header_read_timeout_secs = 1;
            s.server.idle_timeout_secs = 1;
            tweak(s);
        })
        .build()
        .await;
    let running = Running::start(app.settings.clone()).await;
    (app, running)
}

/// How long until the server closes `conn` (reads until EOF or reset),
/// at most `limit`.
async fn closed_after(conn: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), conn.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn a_connection_that_never_sends_a_head_and_a_half_sent_head_are_closed() {
    let (_app, server) = server(|_| {}).await;
    let mut silent = server.connect().await;
    let mut half = server.connect().await;
    half.write_all(b"POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: appl").await.unwrap();
    let (a, b) = tokio::join!(closed_after(&mut silent, Duration::from_secs(5)), closed_after(&mut half, Duration::from_secs(5)));
    assert!(a.is_some(), "a silent connection stayed open");
    assert!(b.is_some(), "a half-sent head stayed open");
    server.shut_down().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_its_request() {
    let (_app, server) = server(|_| {}).await;
    let mut conn = server.connect().await;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    let after = closed_after(&mut conn, Duration::from_secs(5)).await;
    assert!(after.is_some_and(|d| d >= Duration::from_millis(500)), "closed after {after:?}");
    server.shut_down().await;
}

#[tokio::test]
async fn a_body_that_stalls_is_cut_off() {
    let (_app, server) = server(|s| {
        s.server.min_body_bytes_per_sec = 1_000;
        s.server.body_grace_secs = 1;
    })
    .await;
    let mut conn = server.connect().await;
    conn.write_all(b"POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"query\":")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(6), conn.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "a stalled body held its connection for 6 s");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
    server.shut_down().await;
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_at_once() {
    let (_app, server) = server(|s| {
        s.server.max_connections = 2;
        s.server.header_read_timeout_secs = 10;
    })
    .await;
    let _a = server.connect().await;
    let _b = server.connect().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = server.connect().await;
    let closed = closed_after(&mut c, Duration::from_secs(2)).await;
    assert!(closed.is_some(), "a third connection was kept past a limit of two");
    server.shut_down().await;
}

#[tokio::test]
async fn a_shutdown_that_cuts_requests_says_how_many_at_warn() {
    use sea_orm::sqlx::{self, Connection as _};
    crate::logging::logs();
    let app = TestApp::builder(Backend::Postgres)
        .with_settings(|s| {
            s.server.shutdown_grace_secs = 1;
            s.database.lock_timeout_ms = 20_000;
        })
        .build()
        .await;
    let owner = app.sign_up("acme").await;
    let server = Running::start(app.settings.clone()).await;
    // A request held in flight by a table lock when the shutdown comes.
    let mut locker = sqlx::PgConnection::connect(&app.pg.as_ref().unwrap().url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE clients IN ACCESS EXCLUSIVE MODE").execute(&mut locker).await.unwrap();
    let body = r#"{"query":"{ clients(first: 1) { edges { node { id } } } }"}"#;
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: acme.{BASE}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        owner.access,
        body.len()
    );
    let mut conn = server.connect().await;
    conn.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    server.shut_down().await;
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown took {:?}", started.elapsed());
    sqlx::raw_sql("ROLLBACK").execute(&mut locker).await.unwrap();
    let lines = crate::logging::lines_with("cutting requests still in flight");
    assert!(lines.iter().any(|l| l["level"] == "WARN" && l["requests"] == 1), "no warning that one request was cut: {lines:?}");
}
