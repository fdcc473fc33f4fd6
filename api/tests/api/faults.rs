//! Holding under faults and abuse: revocation that survives Redis, no
//! request waiting on a dead dependency, a database outage or a held lock
//! answered `SERVICE_UNAVAILABLE`, throttles that cannot be raced, one
//! password check per sign-in, and hosts that serve an agency right after
//! it signs up.

use std::time::{Duration, Instant};

use aggios::store::{self, users::NewUser};
use futures::future::join_all;
use serde_json::json;

use crate::helpers::*;

const ME: &str = "{ me { email } }";

/// Deletes every key of this app in the shared Redis: what a flush or a
/// restart without persistence leaves, without touching other tests' keys.
async fn flush_app_keys(app: &TestApp) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let pattern = format!("{}:*", app.settings.redis.key_prefix);
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut conn).await.unwrap();
    assert!(!keys.is_empty(), "the app kept nothing in Redis to lose");
    let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.unwrap();
}

fn redis_port() -> String {
    let url = url::Url::parse(&redis_url()).unwrap();
    format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(6379))
}

#[tokio::test]
async fn a_logout_stays_refused_after_redis_loses_its_keys_on_every_instance() {
    let app = TestApp::builder(Backend::Postgres).with_redis().build().await;
    let owner = app.sign_up("acme").await;
    assert!(app.gql_as(&host("acme"), &owner.access, ME).await.body["data"]["me"].is_object());
    let out = app.gql_as(&host("acme"), &owner.access, "mutation { logout }").await;
    assert_eq!(out.body["data"]["logout"], true, "{:?}", out.body);
    assert_eq!(app.gql_as(&host("acme"), &owner.access, ME).await.code(), Some("UNAUTHENTICATED"));

    flush_app_keys(&app).await;
    assert_eq!(app.gql_as(&host("acme"), &owner.access, ME).await.code(), Some("UNAUTHENTICATED"), "revived on the same instance");
    // An instance started after Redis came back empty.
    let other = app.second_instance().await;
    assert_eq!(other.gql_as(&host("acme"), &owner.access, ME).await.code(), Some("UNAUTHENTICATED"), "revived on a new instance");
}

#[tokio::test]
async fn with_redis_unreachable_revoked_tokens_stay_refused_and_requests_are_served_without_waiting() {
    let relay = Relay::start(None, redis_port()).await;
    let app = TestApp::builder(Backend::Postgres).with_redis_url(format!("redis://127.0.0.1:{}", relay.port)).build().await;
    let owner = app.sign_up("acme").await;
    let member = app.add_user(&owner, "acme", "mia", "MEMBER").await;
    let other = app.second_instance().await;
    assert_eq!(app.gql_as(&host("acme"), &owner.access, "mutation { logout }").await.body["data"]["logout"], true);
    relay.stop().await;

    let started = Instant::now();
    for instance in [&app, &other] {
        for _ in 0..5 {
            let a = instance.gql_as(&host("acme"), &member.access, ME).await;
            assert_eq!(a.body["data"]["me"]["email"], "mia@acme.com", "{:?}", a.body);
        }
        assert_eq!(instance.gql_as(&host("acme"), &owner.access, ME).await.code(), Some("UNAUTHENTICATED"));
    }
    // Before, each of these waited on Redis three times over (9 s apiece).
    assert!(started.elapsed() < Duration::from_secs(3), "12 requests took {:?} without Redis", started.elapsed());

    // A logout made while Redis is down reaches the other instance through
    // the database.
    let out = app.gql_as(&host("acme"), &member.access, "mutation { logout }").await;
    assert_eq!(out.body["data"]["logout"], true, "{:?}", out.body);
    assert_eq!(app.gql_as(&host("acme"), &member.access, ME).await.code(), Some("UNAUTHENTICATED"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(other.gql_as(&host("acme"), &member.access, ME).await.code(), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn a_redis_that_accepts_and_never_answers_costs_at_most_its_timeout_once() {
    // A server that takes connections and says nothing: the worst kind.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            open.push(s);
        }
    });
    let app = TestApp::builder(Backend::Postgres).with_redis_url(format!("redis://127.0.0.1:{port}")).build().await;
    let owner = app.sign_up("acme").await;
    let started = Instant::now();
    for _ in 0..10 {
        let a = app.gql_as(&host("acme"), &owner.access, ME).await;
        assert!(a.body["data"]["me"].is_object(), "{:?}", a.body);
    }
    // One call waits out redis.timeout_ms (500 ms); the breaker spares the rest.
    assert!(started.elapsed() < Duration::from_secs(4), "10 requests took {:?} with a silent Redis", started.elapsed());
}

#[tokio::test]
async fn a_database_outage_answers_service_unavailable_at_once_and_recovers_when_it_returns() {
    let relay = Relay::start(None, "127.0.0.1:5432".into()).await;
    let port = relay.port;
    let app = TestApp::builder(Backend::Postgres)
        .with_settings(move |s| {
            let mut url = url::Url::parse(secrecy::ExposeSecret::expose_secret(s.database.url.as_ref().unwrap())).unwrap();
            url.set_port(Some(port)).unwrap();
            s.database.url = Some(url.to_string().into());
        })
        .build()
        .await;
    let owner = app.sign_up("acme").await;
    let clients = "{ clients(first: 5) { edges { node { id } } } }";
    assert!(app.gql_as(&host("acme"), &owner.access, clients).await.body["data"]["clients"].is_object());

    relay.stop().await;
    let a = app.gql_as(&host("acme"), &owner.access, clients).await;
    assert_eq!((a.status, a.code()), (503, Some("SERVICE_UNAVAILABLE")), "{:?}", a.body);
    assert!(a.headers.get("retry-after").is_some(), "no Retry-After: {:?}", a.headers);
    assert!(a.body["errors"][0]["message"].as_str().unwrap().contains("database"), "{:?}", a.body);
    // Once the outage is known, nothing waits on the database.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..5 {
        let started = Instant::now();
        let a = app.gql_as(&host("acme"), &owner.access, clients).await;
        assert_eq!(a.code(), Some("SERVICE_UNAVAILABLE"));
        assert!(started.elapsed() < Duration::from_secs(1), "waited {:?} on a dead database", started.elapsed());
    }
    let mutation = app.gql_as(&host("acme"), &owner.access, r#"mutation { createClient(input: { name: "Lost?" }) { id } }"#).await;
    assert_eq!((mutation.status, mutation.code()), (503, Some("SERVICE_UNAVAILABLE")));

    let _back = Relay::start_on(port, None, "127.0.0.1:5432".into()).await;
    let started = Instant::now();
    loop {
        let a = app.gql_as(&host("acme"), &owner.access, clients).await;
        if a.body["data"]["clients"].is_object() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "not back after {:?}: {:?}", started.elapsed(), a.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_held_table_lock_answers_unavailable_and_readiness_stays_up_with_the_pool_full() {
    use sea_orm::sqlx::{self, Connection as _};
    let app = TestApp::builder(Backend::Postgres)
        .with_settings(|s| {
            s.database.lock_timeout_ms = 1_500;
            s.database.max_connections = 2;
        })
        .build()
        .await;
    let owner = app.sign_up("acme").await;
    let mut locker = sqlx::PgConnection::connect(&app.pg.as_ref().unwrap().url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE clients IN ACCESS EXCLUSIVE MODE").execute(&mut locker).await.unwrap();

    let clients = "{ clients(first: 5) { edges { node { id } } } }";
    let started = Instant::now();
    let acme = host("acme");
    let waiting = join_all((0..4).map(|_| app.gql_as(&acme, &owner.access, clients)));
    let ready = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t = Instant::now();
        (app.get("/readyz").await, t.elapsed())
    };
    let (answers, (ready, ready_took)) = tokio::join!(waiting, ready);
    assert_eq!(ready.status, 200, "readiness starved by a busy pool: {:?}", ready.body);
    assert!(ready_took < Duration::from_secs(2), "readiness took {ready_took:?}");
    for a in &answers {
        assert_eq!((a.status, a.code()), (503, Some("SERVICE_UNAVAILABLE")), "{:?}", a.body);
    }
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    sqlx::raw_sql("ROLLBACK").execute(&mut locker).await.unwrap();
    assert!(app.gql_as(&host("acme"), &owner.access, clients).await.body["data"]["clients"].is_object());
}

/// `n` wrong sign-ins at once; returns how many passwords were checked and
/// how many answers were `RATE_LIMITED`.
async fn race(app: &TestApp, attempts: Vec<(String, serde_json::Value, String)>) -> (u64, usize) {
    let before = app.state.auth.passwords.verifications();
    let answers = join_all(attempts.iter().map(|(query, vars, ip)| async move {
        app.gql_vars(API_HOST, &[("x-forwarded-for", ip)], query, vars.clone()).await
    }))
    .await;
    let limited = answers.iter().filter(|a| a.code() == Some("RATE_LIMITED")).count();
    (app.state.auth.passwords.verifications() - before, limited)
}

async fn concurrent_wrong_sign_ins_check_at_most_the_limit(app: TestApp) {
    app.sign_up("acme").await;
    let login = "mutation($i: LoginInput!) { login(input: $i) { accessToken } }";
    let wrong = |email: &str| json!({ "i": { "email": email, "password": "not the password at all" } });

    // One account from one address: the limit is 5.
    let same: Vec<_> = (0..30).map(|_| (login.to_owned(), wrong("owner@acme.com"), "198.51.100.1".to_owned())).collect();
    let (checked, limited) = race(&app, same).await;
    assert!(checked <= 5, "{checked} passwords checked for one account from one address");
    assert_eq!(limited as u64, 30 - checked);

    // One address, many accounts: the limit is 50.
    let many: Vec<_> = (0..60).map(|i| (login.to_owned(), wrong(&format!("who{i}@acme.com")), "198.51.100.2".to_owned())).collect();
    let (checked, limited) = race(&app, many).await;
    assert!(checked <= 50, "{checked} passwords checked from one address");
    assert!(limited >= 10);

    // Platform sign-in shares the throttle.
    let platform = "mutation($e: String!, $p: String!) { platformLogin(email: $e, password: $p) { accessToken } }";
    let admins: Vec<_> = (0..30)
        .map(|_| (platform.to_owned(), json!({ "e": "root@aggios.test", "p": "not the password at all" }), "198.51.100.3".to_owned()))
        .collect();
    let (checked, _) = race(&app, admins).await;
    assert!(checked <= 5, "{checked} platform passwords checked");
}

mod throttles_hold_under_concurrency {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_process() {
        concurrent_wrong_sign_ins_check_at_most_the_limit(TestApp::new(Backend::Sqlite).await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn through_redis() {
        concurrent_wrong_sign_ins_check_at_most_the_limit(TestApp::builder(Backend::Postgres).with_redis().build().await).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_current_passwords_check_at_most_the_limit() {
    let app = TestApp::builder(Backend::Postgres).with_redis().build().await;
    let owner = app.sign_up("acme").await;
    let before = app.state.auth.passwords.verifications();
    let change = "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { accessToken } }";
    let (acme, bearer) = (host("acme"), format!("Bearer {}", owner.access));
    let headers = [("authorization", bearer.as_str()), ("x-forwarded-for", "198.51.100.9")];
    let vars = json!({ "i": { "currentPassword": "not my password at all", "newPassword": "granite lantern meadow 77" } });
    let answers = join_all((0..20).map(|_| app.gql_vars(&acme, &headers, change, vars.clone()))).await;
    let checked = app.state.auth.passwords.verifications() - before;
    assert!(checked <= 5, "{checked} current passwords checked");
    let codes: Vec<_> = answers.iter().map(|a| a.code().unwrap_or("none").to_owned()).collect();
    assert!(codes.iter().filter(|c| *c == "RATE_LIMITED").count() >= 15, "{codes:?}");
}

#[tokio::test]
async fn forwarded_for_from_a_peer_that_is_not_a_trusted_proxy_is_ignored() {
    let app = TestApp::builder(Backend::Sqlite).with_settings(|s| s.server.trusted_proxies = Vec::new()).build().await;
    app.sign_up("acme").await;
    let login = "mutation($i: LoginInput!) { login(input: $i) { accessToken } }";
    let vars = json!({ "i": { "email": "owner@acme.com", "password": "not the password at all" } });
    // A client naming a new address each time is still one address.
    for i in 0..5 {
        let a = app.gql_vars(&host("acme"), &[("x-forwarded-for", &format!("203.0.113.{i}"))], login, vars.clone()).await;
        assert_eq!(a.code(), Some("INVALID_CREDENTIALS"));
    }
    let a = app.gql_vars(&host("acme"), &[("x-forwarded-for", "203.0.113.200")], login, vars).await;
    assert_eq!(a.code(), Some("RATE_LIMITED"), "{:?}", a.body);
}

on_both_backends! {
    async fn a_sign_in_checks_one_password_whatever_the_number_of_agencies(app) {
        let hash = app.state.auth.passwords.hash(PASSWORD).await.unwrap();
        for i in 0..20 {
            let tenant = app.create_tenant(&format!("agency{i:02}")).await;
            let db = app.state.db.scoped(tenant.id);
            let new = NewUser {
                email: "shared@example.com".into(),
                password_hash: hash.clone(),
                first_name: "Sam".into(),
                last_name: "Shared".into(),
                role: aggios::auth::Role::Member,
            };
            store::users::create(&db, new).await.unwrap();
            db.finish(true).await.unwrap();
        }
        app.create_tenant("single").await;
        let login = "mutation($i: LoginInput!) { login(input: $i) { accessToken } }";
        let checks = async |email: &str, password: &str, ip: &str| {
            let before = app.state.auth.passwords.verifications();
            let a = app.gql_vars(API_HOST, &[("x-forwarded-for", ip)], login, json!({ "i": { "email": email, "password": password } })).await;
            (app.state.auth.passwords.verifications() - before, a.code().map(str::to_owned))
        };
        assert_eq!(checks("shared@example.com", "wrong password here", "192.0.2.1").await, (1, Some("INVALID_CREDENTIALS".into())));
        assert_eq!(checks("nobody@example.com", "wrong password here", "192.0.2.2").await, (1, Some("INVALID_CREDENTIALS".into())));
        // Only whoever knows the password learns that there are several.
        assert_eq!(checks("shared@example.com", PASSWORD, "192.0.2.3").await, (1, Some("CONFLICT".into())));
        let named = app
            .gql_vars(API_HOST, &[], "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
                json!({ "i": { "email": "shared@example.com", "password": PASSWORD, "agency": "agency07" } }))
            .await;
        assert!(named.body["data"]["login"]["accessToken"].is_string(), "{:?}", named.body);
    }
}

#[tokio::test]
async fn a_host_probed_before_its_agency_signs_up_serves_it_right_after_on_every_instance() {
    let app = TestApp::builder(Backend::Postgres).with_redis().build().await;
    let other = app.second_instance().await;
    let probe = other.gql(&host("newco"), "{ __typename }").await;
    assert_eq!(probe.code(), Some("TENANT_NOT_FOUND"));
    let owner = app.sign_up("newco").await;
    let a = other.gql_as(&host("newco"), &owner.access, ME).await;
    assert_eq!(a.body["data"]["me"]["email"], "owner@newco.com", "{:?}", a.body);
}

#[tokio::test]
async fn on_the_embedded_default_a_probed_host_serves_its_agency_right_after_sign_up() {
    let app = TestApp::new(Backend::Sqlite).await;
    assert_eq!(app.gql(&host("newco"), "{ __typename }").await.code(), Some("TENANT_NOT_FOUND"));
    let owner = app.sign_up("newco").await;
    assert_eq!(app.gql_as(&host("newco"), &owner.access, ME).await.body["data"]["me"]["email"], "owner@newco.com");
}
