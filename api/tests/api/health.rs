//! `/healthz` and `/readyz` against the real services: green when the
//! database, Redis and SeaweedFS answer, red with the reason when one stops.

use std::process::Stdio;


use crate::helpers::*;

#[tokio::test]
async fn healthz_answers_without_touching_dependencies() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = app.get("/healthz").await;
    assert_eq!((a.status, a.body["status"].as_str()), (200, Some("ok")));
}

#[tokio::test]
async fn readyz_is_green_on_the_embedded_default() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = app.get("/readyz").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["checks"]["database"]["backend"], "sqlite");
    assert_eq!(a.body["checks"]["cache"]["backend"], "in-process");
    assert_eq!(a.body["checks"]["storage"]["backend"], "local");
}

#[tokio::test]
async fn readyz_is_green_against_postgres_redis_and_seaweedfs() {
    let app = TestApp::builder(Backend::Postgres).with_redis().with_s3().build().await;
    let a = app.get("/readyz").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["status"], "ready");
    for (check, backend) in [("database", "postgresql"), ("cache", "redis"), ("storage", "s3")] {
        assert_eq!(a.body["checks"][check]["status"], "up", "{check}");
        assert_eq!(a.body["checks"][check]["backend"], backend, "{check}");
    }
}

/// A Redis server of the test's own, so stopping it harms no other test.
struct OwnRedis {
    child: tokio::process::Child,
    port: u16,
}

impl OwnRedis {
    async fn start() -> Self {
        let port = free_port();
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        wait_for_port(port).await;
        Self { child, port }
    }
}

#[tokio::test]
async fn readyz_turns_red_naming_redis_when_redis_stops() {
    let mut redis = OwnRedis::start().await;
    let app = TestApp::builder(Backend::Sqlite)
        .with_redis_url(format!("redis://127.0.0.1:{}", redis.port))
        .build()
        .await;
    assert_eq!(app.get("/readyz").await.status, 200);

    redis.child.kill().await.unwrap();
    let a = app.get("/readyz").await;
    assert_eq!(a.status, 503, "{:?}", a.body);
    assert_eq!(a.body["checks"]["cache"]["status"], "down");
    assert!(a.body["checks"]["cache"]["reason"].as_str().is_some_and(|r| !r.is_empty()), "{:?}", a.body);
    assert_eq!(a.body["checks"]["database"]["status"], "up");
    // And the API keeps serving what does not need Redis.
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn readyz_turns_red_naming_storage_when_s3_stops() {
    let s3 = s3();
    let target = url::Url::parse(&s3.endpoint).unwrap();
    let relay = Relay::start(None, format!("{}:{}", target.host_str().unwrap(), target.port().unwrap_or(80))).await;
    let app = TestApp::builder(Backend::Sqlite)
        .with_s3_endpoint(S3Endpoint { endpoint: format!("http://127.0.0.1:{}", relay.port), ..s3 })
        .build()
        .await;
    let green = app.get("/readyz").await;
    assert_eq!(green.status, 200, "{:?}", green.body);
    assert_eq!(green.body["checks"]["storage"]["backend"], "s3");

    relay.stop().await;
    let a = app.get("/readyz").await;
    assert_eq!(a.status, 503, "{:?}", a.body);
    assert_eq!(a.body["checks"]["storage"]["status"], "down");
    assert!(a.body["checks"]["storage"]["reason"].as_str().is_some_and(|r| !r.is_empty()));
}

#[tokio::test]
async fn readyz_turns_red_when_the_bucket_does_not_exist() {
    let app = TestApp::builder(Backend::Sqlite)
        .with_s3_endpoint(S3Endpoint { bucket: "no-such-bucket-aggios".into(), ..s3() })
        .build()
        .await;
    let a = app.get("/readyz").await;
    assert_eq!(a.status, 503, "{:?}", a.body);
    assert_eq!(a.body["checks"]["storage"]["status"], "down");
}
