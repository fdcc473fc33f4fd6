//! The embedded SQLite default under concurrent writers: writers take turns,
//! so one agency's writes never make another's fail; queries stay readers
//! and never wait for a writer; a turn that does not come in time answers
//! `SERVICE_UNAVAILABLE`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use sea_orm::ConnectionTrait as _;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

const WRITERS_PER_AGENCY: usize = 8;
const UPDATES_PER_WRITER: usize = 20;
const UPDATE: &str = "mutation($id: ID!, $n: String!) { updateClient(id: $id, input: { name: $n }) { name } }";

async fn create_client(app: &TestApp, who: &Signed, sub: &str, name: &str) -> String {
    let a = app
        .gql_as_vars(&host(sub), &who.access, "mutation($n: String!) { createClient(input: { name: $n }) { id } }", json!({ "n": name }))
        .await;
    a.body["data"]["createClient"]["id"].as_str().unwrap_or_else(|| panic!("{:?}", a.body)).to_owned()
}

#[derive(Clone)]
struct Writer {
    sub: &'static str,
    token: String,
    client: String,
    n: usize,
}

impl Writer {
    fn name(&self, update: usize) -> String {
        format!("{} writer {} update {update}", self.sub, self.n)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_of_two_agencies_never_make_each_other_fail() {
    let app = Arc::new(TestApp::new(Backend::Sqlite).await);
    let mut writers = Vec::new();
    for sub in ["acme", "globex"] {
        let owner = app.sign_up(sub).await;
        for n in 0..WRITERS_PER_AGENCY {
            let client = create_client(&app, &owner, sub, &format!("{sub} client {n}")).await;
            writers.push(Writer { sub, token: owner.access.clone(), client, n });
        }
    }

    let started = Instant::now();
    let loops: Vec<_> = writers
        .iter()
        .cloned()
        .map(|w| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut failed = Vec::new();
                for update in 0..UPDATES_PER_WRITER {
                    let a = app.gql_as_vars(&host(w.sub), &w.token, UPDATE, json!({ "id": w.client, "n": w.name(update) })).await;
                    if a.body["data"]["updateClient"]["name"] != w.name(update).as_str() {
                        failed.push(a.body);
                    }
                }
                failed
            })
        })
        .collect();
    let mut failed = Vec::new();
    for l in loops {
        failed.extend(l.await.unwrap());
    }
    let elapsed = started.elapsed();
    let calls = writers.len() * UPDATES_PER_WRITER;
    // A measurement for the record, not an assertion.
    println!(
        "{calls} updateClient calls by {} concurrent writers in {elapsed:.2?}: {:.0} writes/s, {} failed",
        writers.len(),
        calls as f64 / elapsed.as_secs_f64(),
        failed.len()
    );
    assert!(failed.is_empty(), "{} of {calls} calls failed; the first: {}", failed.len(), failed[0]);

    // Every update is there: each client has its writer's last name, and
    // its audit trail holds one event per update.
    for w in &writers {
        let a = app
            .gql_as_vars(
                &host(w.sub),
                &w.token,
                "query($id: ID!) { client(id: $id) { name } auditEvents(first: 100, filter: { action: \"client.update\", targetId: $id }) { edges { node { id } } } }",
                json!({ "id": w.client }),
            )
            .await;
        assert_eq!(a.body["data"]["client"]["name"], w.name(UPDATES_PER_WRITER - 1).as_str(), "{:?}", a.body);
        assert_eq!(a.body["data"]["auditEvents"]["edges"].as_array().map(Vec::len), Some(UPDATES_PER_WRITER), "{:?}", a.body);
    }
}

#[tokio::test]
async fn an_api_key_query_reads_while_a_writer_holds_the_lock_and_the_key_use_is_recorded_after() {
    let app = TestApp::new(Backend::Sqlite).await;
    let owner = app.sign_up("acme").await;
    let (key, key_id) = app.api_key(&owner, "acme", "READ").await;
    let tenant: Uuid = owner.tenant_id.parse().unwrap();

    // A writer of the agency opens its transaction: it has the writer's
    // turn and SQLite's write lock until it ends.
    let writer = app.state.db.scoped(tenant);
    writer.execute_unprepared("SELECT 1").await.unwrap();

    let started = Instant::now();
    let read = app.gql_with(&host("acme"), &[("x-api-key", &key)], "{ clients { edges { node { id } } } }").await;
    assert_eq!((read.status, &read.body["errors"]), (200, &serde_json::Value::Null), "{:?}", read.body);
    // Far below the five seconds a writer would wait for its turn.
    assert!(started.elapsed() < Duration::from_secs(2), "the query waited {:?}", started.elapsed());
    // The key's use waits for its own turn, outside the request.
    let listed = app.gql_as(&host("acme"), &owner.access, "{ apiKeys { lastUsedAt } }").await;
    assert_eq!(listed.body["data"]["apiKeys"][0]["lastUsedAt"], serde_json::Value::Null, "{:?}", listed.body);

    writer.finish(false).await.unwrap();
    assert!(app.key_last_used(&owner, "acme", &key_id).await.is_some(), "the key's use is recorded once the writer is done");
}

#[tokio::test]
async fn a_write_whose_turn_does_not_come_in_time_answers_service_unavailable() {
    let app = TestApp::builder(Backend::Sqlite).with_acquire_timeout(1).build().await;
    let owner = app.sign_up("acme").await;
    let client = create_client(&app, &owner, "acme", "Globo").await;
    let writer = app.state.db.scoped(owner.tenant_id.parse().unwrap());
    writer.execute_unprepared("SELECT 1").await.unwrap();

    let vars = json!({ "id": client, "n": "Globo Ltd" });
    let refused = app.gql_as_vars(&host("acme"), &owner.access, UPDATE, vars.clone()).await;
    assert_eq!(refused.code(), Some("SERVICE_UNAVAILABLE"), "{:?}", refused.body);
    assert!(refused.body["errors"][0]["message"].as_str().unwrap().contains("database"), "{:?}", refused.body);

    writer.finish(false).await.unwrap();
    let done = app.gql_as_vars(&host("acme"), &owner.access, UPDATE, vars).await;
    assert_eq!(done.body["data"]["updateClient"]["name"], "Globo Ltd", "{:?}", done.body);
}
