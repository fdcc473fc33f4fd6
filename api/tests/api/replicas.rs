//! Read replicas, on a real streaming replica: scripts/test.sh starts a
//! private PostgreSQL primary and a replica made with `pg_basebackup -R`
//! (TEST_PG_PAIR_*). Queries read the replica; a client's reads after its
//! own write never come from a replica that has not replayed it; a replica
//! past the lag bound, or down, is not read from.

use std::time::{Duration, Instant};

use sea_orm::sqlx::{self, Connection as _, PgConnection};
use serde_json::json;

use crate::helpers::*;

/// Pausing replay stops the whole replica: its tests take turns.
static PAIR: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn replica_admin() -> PgConnection {
    PgConnection::connect(&required_env("TEST_PG_PAIR_REPLICA_URL")).await.expect("the test replica answers")
}

async fn until_usable(app: &TestApp, want: bool, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = app.state.db.replicas_usable();
        if now.iter().all(|(_, usable)| *usable == want) && !now.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "replicas never became usable = {want}: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the replica has replayed all the primary has written, and
/// the monitor has seen it.
async fn until_caught_up(app: &TestApp) {
    let mut primary = PgConnection::connect(&app.pg.as_ref().unwrap().url).await.unwrap();
    let mut replica = replica_admin().await;
    let (target,): (String,) = sqlx::query_as("SELECT pg_current_wal_lsn()::text").fetch_one(&mut primary).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (done,): (bool,) =
            sqlx::query_as("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn").bind(&target).fetch_one(&mut replica).await.unwrap();
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "the replica did not replay up to {target}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn names(app: &TestApp, token: &str) -> Vec<String> {
    let a = app.gql_as(&host("rep"), token, "{ clients(first: 50) { edges { node { name } } } }").await;
    let mut names: Vec<String> =
        a.body["data"]["clients"]["edges"].as_array().unwrap_or_else(|| panic!("{:?}", a.body)).iter().map(|e| e["node"]["name"].as_str().unwrap().to_owned()).collect();
    names.sort();
    names
}

async fn create_client(app: &TestApp, token: &str, name: &str) -> String {
    let a = app
        .gql_as_vars(&host("rep"), token, "mutation($i: CreateClientInput!) { createClient(input: $i) { id } }", json!({ "i": { "name": name } }))
        .await;
    a.body["data"]["createClient"]["id"].as_str().unwrap_or_else(|| panic!("{:?}", a.body)).to_owned()
}

#[tokio::test]
async fn queries_read_the_replica_and_a_client_always_sees_its_own_writes() {
    let _turn = PAIR.lock().await;
    let app = TestApp::builder(Backend::Postgres).with_read_replica(3_000).with_redis().build().await;
    until_usable(&app, true, Duration::from_secs(10)).await;
    let owner = app.sign_up("rep").await;
    let id = create_client(&app, &owner.access, "Seen").await;
    // Its own write, read at once: never from a replica behind it.
    assert_eq!(names(&app, &owner.access).await, ["Seen"]);
    until_caught_up(&app).await;

    // Replay paused, a change made on the primary behind the server's back
    // (so no agency mark is raised) is not what queries see: they read the
    // replica, which is within its lag bound.
    let mut replica = replica_admin().await;
    sqlx::query("SELECT pg_wal_replay_pause()").execute(&mut replica).await.unwrap();
    let resume = async || {
        let mut replica = replica_admin().await;
        sqlx::query("SELECT pg_wal_replay_resume()").execute(&mut replica).await.unwrap();
    };
    let mut primary = PgConnection::connect(&app.pg.as_ref().unwrap().url).await.unwrap();
    sqlx::query("UPDATE clients SET name = 'Changed behind its back' WHERE id = $1::uuid").bind(&id).execute(&mut primary).await.unwrap();
    let seen = names(&app, &owner.access).await;

    // A write through the server raises the agency's mark past what the
    // paused replica replayed: the next read is the primary's.
    create_client(&app, &owner.access, "Mine").await;
    let after_write = names(&app, &owner.access).await;

    // Still paused, the replica falls past the bound (3 s) and is left.
    let left = tokio::time::timeout(Duration::from_secs(10), until_usable(&app, false, Duration::from_secs(10))).await;
    resume().await;
    assert_eq!(seen, ["Seen"], "read from the replica, which had not replayed the change");
    assert_eq!(after_write, ["Changed behind its back", "Mine"], "after its own write a client reads the primary");
    assert!(left.is_ok(), "a replica past its lag bound is still read from");
    // Resumed, it catches up and is read again, with everything.
    until_usable(&app, true, Duration::from_secs(10)).await;
    until_caught_up(&app).await;
    assert_eq!(names(&app, &owner.access).await, ["Changed behind its back", "Mine"]);
}

#[tokio::test]
async fn with_no_replica_answering_queries_go_to_the_primary_without_waiting() {
    // Nothing listens on port 1.
    let app = TestApp::builder(Backend::Postgres)
        .with_settings(|s| s.database.replica_urls = vec!["postgres://postgres@127.0.0.1:1/aggios".to_owned().into()])
        .build()
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.state.db.replicas_usable(), [("127.0.0.1:1/aggios".to_owned(), false)]);
    let owner = app.sign_up("rep").await;
    create_client(&app, &owner.access, "Solo").await;
    let started = Instant::now();
    assert_eq!(names(&app, &owner.access).await, ["Solo"]);
    assert!(started.elapsed() < Duration::from_secs(1), "a query waited {:?} on a replica that is down", started.elapsed());
}
