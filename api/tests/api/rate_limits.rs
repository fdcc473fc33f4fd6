//! Rate limits: each budget (address, user, key and agency requests; query
//! cost; mutations; sign-ups; sign-ins) refuses with `429 RATE_LIMITED` and
//! `Retry-After` once spent, the RateLimit header fields say where a client
//! stands, one budget holds against many requests at once and across two
//! instances sharing Redis, one agency or address spending its budget leaves
//! the others alone, and with Redis gone each instance keeps the limits in
//! its own memory without waiting.

use std::time::{Duration, Instant};

use aggios::config::RateLimitSettings;
use futures::future::join_all;
use serde_json::json;

use crate::helpers::*;

const TYPENAME: &str = "{ __typename }";
const ME: &str = "{ me { id } }";

fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
    a.headers.get(name).and_then(|v| v.to_str().ok())
}

/// An app whose only budgets are those `set` gives.
async fn app_with(backend: Backend, redis: bool, set: impl FnOnce(&mut RateLimitSettings) + 'static) -> TestApp {
    let builder = TestApp::builder(backend).with_rate_limits(set);
    if redis { builder.with_redis() } else { builder }.build().await
}

/// An anonymous `{ __typename }` from `ip`.
async fn anonymous(app: &TestApp, ip: &str) -> Answer {
    app.gql_with(API_HOST, &[("x-forwarded-for", ip)], TYPENAME).await
}

/// Asserts `a` is a refusal by `budget`: 429, `RATE_LIMITED`, no data,
/// `Retry-After` equal to `extensions.retryAfter` and to the RateLimit
/// field's `t`, with nothing left of the budget but less than the request.
fn refused_by(a: &Answer, budget: &str) -> u64 {
    assert_eq!(a.status, 429, "{:?}", a.body);
    assert_eq!(a.code(), Some("RATE_LIMITED"), "{:?}", a.body);
    let ext = &a.body["errors"][0]["extensions"];
    assert_eq!(ext["budget"], budget, "{:?}", a.body);
    assert!(a.body.get("data").is_none(), "a refused request never ran: {:?}", a.body);
    let retry = ext["retryAfter"].as_u64().unwrap();
    assert!(retry >= 1);
    assert_eq!(header(a, "retry-after"), Some(retry.to_string().as_str()));
    let limit = header(a, "ratelimit").unwrap();
    assert!(limit.starts_with(&format!("\"{budget}\";r=")) && limit.ends_with(&format!(";t={retry}")), "{limit}");
    retry
}

fn ok(a: &Answer) {
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert!(a.body["errors"].is_null(), "{:?}", a.body);
}

on_apps!(
    async fn anonymous_requests_are_counted_by_address_and_one_address_does_not_spend_another(app) {
        for i in 0..3 {
            let a = anonymous(&app, "203.0.113.1").await;
            ok(&a);
            assert_eq!(header(&a, "ratelimit-policy"), Some("\"address-requests\";q=3;w=60"));
            assert_eq!(header(&a, "ratelimit"), Some(format!("\"address-requests\";r={};t={}", 2 - i, 20 * (i + 1)).as_str()));
        }
        let refused = anonymous(&app, "203.0.113.1").await;
        let retry = refused_by(&refused, "address-requests");
        assert!((19..=20).contains(&retry), "one request comes back every 20 s: {retry}");
        assert_eq!(header(&refused, "ratelimit"), Some(format!("\"address-requests\";r=0;t={retry}").as_str()));
        ok(&anonymous(&app, "203.0.113.2").await);
        // IPv6 clients are one client per /64.
        for _ in 0..3 {
            ok(&anonymous(&app, "2001:db8:5:6::1").await);
        }
        refused_by(&anonymous(&app, "2001:db8:5:6:ffff::2").await, "address-requests");
    }
    in_process => app_with(Backend::Sqlite, false, |r| r.address_requests_per_minute = 3),
    through_redis => app_with(Backend::Postgres, true, |r| r.address_requests_per_minute = 3)
);

#[tokio::test]
async fn a_users_requests_are_counted_by_user_and_a_keys_by_key() {
    let app = app_with(Backend::Sqlite, false, |r| {
        r.user_requests_per_minute = 4;
        r.key_requests_per_minute = 2;
    })
    .await;
    let owner = app.sign_up("acme").await;
    let (key, _) = app.api_key(&owner, "acme", "READ").await;
    let mia = app.add_user(&owner, "acme", "mia", "MEMBER").await;
    // The owner spent 2 of 4 setting up; mia signed in and spent none.
    for _ in 0..2 {
        ok(&app.gql_as(&host("acme"), &owner.access, ME).await);
    }
    refused_by(&app.gql_as(&host("acme"), &owner.access, ME).await, "user-requests");
    for _ in 0..4 {
        ok(&app.gql_as(&host("acme"), &mia.access, ME).await);
    }
    let acme = host("acme");
    let with_key = [("x-api-key", key.as_str())];
    ok(&app.gql_with(&acme, &with_key, "{ tenant { id } }").await);
    let a = app.gql_with(&acme, &with_key, "{ tenant { id } }").await;
    ok(&a);
    assert_eq!(header(&a, "ratelimit"), Some("\"key-requests\";r=0;t=60"));
    refused_by(&app.gql_with(&acme, &with_key, "{ tenant { id } }").await, "key-requests");
}

#[tokio::test]
async fn one_agency_spending_its_budget_leaves_another_agency_alone() {
    let app = app_with(Backend::Postgres, true, |r| r.agency_requests_per_minute = 6).await;
    let acme = app.sign_up("acme").await;
    let ana = app.add_user(&acme, "acme", "ana", "MEMBER").await;
    let globex = app.sign_up("globex").await;
    // acme's owner used 1 (creating ana); the rest goes to its two users.
    for _ in 0..2 {
        ok(&app.gql_as(&host("acme"), &acme.access, ME).await);
        ok(&app.gql_as(&host("acme"), &ana.access, ME).await);
    }
    let a = app.gql_as(&host("acme"), &ana.access, ME).await;
    ok(&a);
    assert_eq!(header(&a, "ratelimit-policy"), Some("\"agency-requests\";q=6;w=60"));
    assert!(header(&a, "ratelimit").unwrap().starts_with("\"agency-requests\";r=0;"), "{:?}", a.headers);
    refused_by(&app.gql_as(&host("acme"), &acme.access, ME).await, "agency-requests");
    refused_by(&app.gql_as(&host("acme"), &ana.access, ME).await, "agency-requests");
    for _ in 0..6 {
        ok(&app.gql_as(&host("globex"), &globex.access, ME).await);
    }
}

#[tokio::test]
async fn a_query_spends_its_cost_so_a_page_of_100_weighs_100_times_a_page_of_1() {
    let app = app_with(Backend::Sqlite, false, |r| r.user_query_cost_per_minute = 1_000).await;
    let owner = app.sign_up("acme").await;
    let page = |n: u32| format!("{{ clients(first: {n}) {{ edges {{ node {{ id name }} }} }} }}");
    let policy = "\"user-query-cost\";q=1000;w=60;aggios-unit=\"complexity\"";
    // 100 × (edges + node + id + name): 400.
    let a = app.gql_as(&host("acme"), &owner.access, &page(100)).await;
    ok(&a);
    assert_eq!(header(&a, "ratelimit-policy"), Some(policy));
    assert_eq!(header(&a, "ratelimit"), Some("\"user-query-cost\";r=600;t=24"));
    let a = app.gql_as(&host("acme"), &owner.access, &page(1)).await;
    ok(&a);
    let left: u64 = header(&a, "ratelimit").unwrap().split(";r=").nth(1).unwrap().split(';').next().unwrap().parse().unwrap();
    assert!((596..=600).contains(&left), "a page of 1 costs 4: {left} left");
    ok(&app.gql_as(&host("acme"), &owner.access, &page(100)).await);
    // About 200 are left: the next page of 100 does not fit, a page of 1 does.
    refused_by(&app.gql_as(&host("acme"), &owner.access, &page(100)).await, "user-query-cost");
    ok(&app.gql_as(&host("acme"), &owner.access, &page(1)).await);
}

#[tokio::test]
async fn a_mutation_spends_one_per_root_field_all_or_nothing_and_queries_go_on() {
    let app = app_with(Backend::Postgres, true, |r| r.user_mutations_per_minute = 3).await;
    let owner = app.sign_up("acme").await;
    let two = "mutation { a: createClient(input: { name: \"A\" }) { id } b: createClient(input: { name: \"B\" }) { id } }";
    let a = app.gql_as(&host("acme"), &owner.access, two).await;
    ok(&a);
    assert_eq!(header(&a, "ratelimit"), Some("\"user-mutations\";r=1;t=40"));
    // Two do not fit in the one left: neither runs.
    refused_by(&app.gql_as(&host("acme"), &owner.access, two).await, "user-mutations");
    ok(&app.gql_as(&host("acme"), &owner.access, "mutation { createClient(input: { name: \"C\" }) { id } }").await);
    let listed = app.gql_as(&host("acme"), &owner.access, "{ clients { edges { node { name } } } }").await;
    ok(&listed);
    assert_eq!(listed.body["data"]["clients"]["edges"].as_array().unwrap().len(), 3, "{:?}", listed.body);
}

async fn sign_up_from(app: &TestApp, sub: &str, ip: &str, accept: &str) -> Answer {
    app.gql_vars(
        API_HOST,
        &[("x-forwarded-for", ip), ("accept", accept)],
        &format!("mutation($i: SignUpInput!) {{ signUp(input: $i) {{ {PAYLOAD} }} }}"),
        json!({ "i": {
            "agencyName": format!("Agency {sub}"), "subdomain": sub, "email": format!("owner@{sub}.com"),
            "password": PASSWORD, "firstName": "Olga", "lastName": "Owner",
        } }),
    )
    .await
}

on_apps!(
    async fn sign_ups_are_counted_by_address_and_refused_with_429_in_either_media_type(app) {
        for sub in ["one", "two"] {
            ok(&sign_up_from(&app, sub, "198.51.100.7", "application/json").await);
        }
        for accept in ["application/json", "application/graphql-response+json"] {
            let a = sign_up_from(&app, "three", "198.51.100.7", accept).await;
            let retry = refused_by(&a, "sign-ups");
            assert!(retry > 1700, "a sign-up comes back every 30 minutes: {retry}");
            assert!(header(&a, "content-type").unwrap().starts_with(accept), "{:?}", a.headers);
        }
        // Another address signs up as usual.
        ok(&sign_up_from(&app, "three", "198.51.100.8", "application/json").await);
        // Two sign-ups in one operation spend two.
        let twice = "mutation($i: SignUpInput!, $j: SignUpInput!) { a: signUp(input: $i) { accessToken } b: signUp(input: $j) { accessToken } }";
        let input = |sub: &str| json!({ "agencyName": "X", "subdomain": sub, "email": format!("o@{sub}.com"), "password": PASSWORD, "firstName": "O", "lastName": "O" });
        let a = app.gql_vars(API_HOST, &[("x-forwarded-for", "198.51.100.8")], twice, json!({ "i": input("four"), "j": input("five") })).await;
        refused_by(&a, "sign-ups");
    }
    in_process => app_with(Backend::Sqlite, false, |r| r.sign_ups_per_address_per_hour = 2),
    through_redis => app_with(Backend::Postgres, true, |r| r.sign_ups_per_address_per_hour = 2)
);

#[tokio::test]
async fn sign_ins_are_counted_by_address_before_any_password_is_checked() {
    let app = app_with(Backend::Sqlite, false, |r| r.sign_ins_per_address_per_minute = 2).await;
    app.sign_up("acme").await;
    let login = "mutation($i: LoginInput!) { login(input: $i) { accessToken } }";
    let vars = json!({ "i": { "email": "owner@acme.com", "password": PASSWORD } });
    let acme = host("acme");
    let (first, second) = ([("x-forwarded-for", "192.0.2.1")], [("x-forwarded-for", "192.0.2.2")]);
    ok(&app.gql_vars(&acme, &first, login, vars.clone()).await);
    ok(&app.gql_vars(&acme, &first, login, vars.clone()).await);
    let checked = app.state.auth.passwords.verifications();
    refused_by(&app.gql_vars(&acme, &first, login, vars.clone()).await, "sign-ins");
    assert_eq!(app.state.auth.passwords.verifications(), checked, "a refused sign-in costs no hash");
    ok(&app.gql_vars(&acme, &second, login, vars).await);
}

on_apps!(
    async fn many_requests_at_once_never_pass_more_than_the_budget(app) {
        let answers = join_all((0..40).map(|_| anonymous(&app, "203.0.113.50"))).await;
        let passed = answers.iter().filter(|a| a.status == 200).count();
        let refused = answers.iter().filter(|a| a.status == 429 && a.code() == Some("RATE_LIMITED")).count();
        assert_eq!((passed, refused), (10, 30));
        // The same for a budget checked after parsing: sign-ups at once.
        let subs: Vec<String> = (0..8).map(|i| format!("burst{i}")).collect();
        let ups = join_all(subs.iter().map(|sub| sign_up_from(&app, sub, "203.0.113.51", "application/json"))).await;
        assert_eq!(ups.iter().filter(|a| a.body["data"]["signUp"]["accessToken"].is_string()).count(), 3);
        assert_eq!(ups.iter().filter(|a| a.status == 429).count(), 5);
    }
    in_process => app_with(Backend::Sqlite, false, |r| { r.address_requests_per_minute = 10; r.sign_ups_per_address_per_hour = 3 }),
    through_redis => app_with(Backend::Postgres, true, |r| { r.address_requests_per_minute = 10; r.sign_ups_per_address_per_hour = 3 })
);

#[tokio::test]
async fn two_instances_sharing_redis_spend_one_budget() {
    let a = app_with(Backend::Postgres, true, |r| r.address_requests_per_minute = 10).await;
    let b = a.second_instance().await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        let app = if i % 2 == 0 { &a } else { &b };
        statuses.push(anonymous(app, "203.0.113.60").await.status);
    }
    assert_eq!(statuses, [[200; 10].as_slice(), &[429, 429]].concat(), "6 through each instance, 10 in all");
    // Spent for both, whichever asks.
    refused_by(&anonymous(&a, "203.0.113.60").await, "address-requests");
    refused_by(&anonymous(&b, "203.0.113.60").await, "address-requests");
}

#[tokio::test]
async fn budgets_live_in_redis_under_the_prefix_per_agency_and_expire() {
    // Two a minute: each request keeps its bucket for 30 s.
    let app = app_with(Backend::Postgres, true, |r| {
        r.address_requests_per_minute = 2;
        r.user_requests_per_minute = 2;
        r.agency_requests_per_minute = 2;
    })
    .await;
    let owner = app.sign_up("acme").await;
    ok(&app.gql_as(&host("acme"), &owner.access, ME).await);
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let prefix = &app.settings.redis.key_prefix;
    let keys = [
        format!("{prefix}:p:rl:address-requests:127.0.0.1"),
        format!("{prefix}:t:{}:rl:user-requests:{}", owner.tenant_id, owner.user_id),
        format!("{prefix}:t:{}:rl:agency-requests", owner.tenant_id),
    ];
    for key in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut conn).await.unwrap();
        assert!((1..=60_000).contains(&ttl), "{key}: PTTL {ttl}");
    }
}

#[tokio::test]
async fn with_redis_gone_each_instance_keeps_the_budgets_in_memory_without_waiting() {
    let url = url::Url::parse(&redis_url()).unwrap();
    let relay = Relay::start(None, format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(6379))).await;
    let app = TestApp::builder(Backend::Postgres)
        .with_redis_url(format!("redis://127.0.0.1:{}", relay.port))
        .with_rate_limits(|r| r.address_requests_per_minute = 3)
        .build()
        .await;
    ok(&anonymous(&app, "203.0.113.70").await);
    relay.stop().await;

    let started = Instant::now();
    let statuses: Vec<u16> = join_all((0..6).map(|_| anonymous(&app, "203.0.113.71"))).await.iter().map(|a| a.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "never unlimited: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3, "{statuses:?}");
    // At most the one call that found Redis gone waited (redis.timeout_ms).
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?} without Redis", started.elapsed());
    let later = Instant::now();
    refused_by(&anonymous(&app, "203.0.113.71").await, "address-requests");
    assert!(later.elapsed() < Duration::from_millis(200), "the breaker is open: no wait, {:?}", later.elapsed());
}

#[tokio::test]
async fn browsers_on_an_allowed_origin_may_read_the_ratelimit_fields() {
    let app = app_with(Backend::Sqlite, false, |r| r.address_requests_per_minute = 50).await;
    app.sign_up("acme").await;
    let a = app.gql_with(&host("acme"), &[("origin", "https://acme.aggios.test")], TYPENAME).await;
    ok(&a);
    let exposed = header(&a, "access-control-expose-headers").unwrap();
    for name in ["ratelimit", "ratelimit-policy", "retry-after"] {
        assert!(exposed.split(", ").any(|h| h == name), "{exposed}");
    }
    assert!(header(&a, "ratelimit").is_some());
}

#[tokio::test]
async fn switched_off_nothing_is_counted_and_no_field_is_sent() {
    let app = app_with(Backend::Sqlite, false, |r| {
        *r = RateLimitSettings { enabled: false, ..RateLimitSettings::default() };
        r.address_requests_per_minute = 1;
    })
    .await;
    for _ in 0..3 {
        let a = anonymous(&app, "203.0.113.80").await;
        ok(&a);
        assert!(header(&a, "ratelimit").is_none() && header(&a, "ratelimit-policy").is_none());
    }
}
