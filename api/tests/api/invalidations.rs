//! The invalidation bus (Redis pub/sub): ended access and tenant changes
//! reach every instance at once, so requests check them without a round
//! trip; while an instance's subscription is down it asks Redis again, and
//! nothing it missed is believed away.

use std::time::{Duration, Instant};

use crate::{helpers::*, tenancy::set_active};

const ME: &str = "{ me { email } }";

async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// Deletes this deployment's keys: the markers go, only the bus can tell.
async fn flush_keys(app: &TestApp) {
    let mut conn = redis_conn().await;
    let pattern = format!("{}:*", app.settings.redis.key_prefix);
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut conn).await.unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.unwrap();
    }
}

/// The code `query` answers on `app` within 300 ms (a message crosses
/// Redis in well under a millisecond; the durable list reloads every second).
async fn code_soon(app: &TestApp, token: Option<&str>, query: &str, want: &str) -> Answer {
    let deadline = Instant::now() + Duration::from_millis(300);
    loop {
        let a = match token {
            Some(t) => app.gql_as(&host("acme"), t, query).await,
            None => app.gql(&host("acme"), query).await,
        };
        if a.code() == Some(want) || Instant::now() > deadline {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `app`'s bus is live and its revocation copy caught up (a
/// reload began after the subscription).
async fn until_live(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.state.cache.bus().live_since().is_none_or(|t| t.elapsed() < Duration::from_millis(1100)) {
        assert!(Instant::now() < deadline, "the invalidation bus never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_logout_on_one_instance_is_refused_on_the_other_at_once_without_its_marker() {
    let app = TestApp::builder(Backend::Postgres).with_redis().build().await;
    let other = app.second_instance().await;
    let owner = app.sign_up("acme").await;
    let member = app.add_user(&owner, "acme", "mia", "MEMBER").await;
    until_live(&app).await;
    until_live(&other).await;
    assert_eq!(other.gql_as(&host("acme"), &owner.access, ME).await.body["data"]["me"]["email"], "owner@acme.com");

    assert_eq!(app.gql_as(&host("acme"), &owner.access, "mutation { logout }").await.body["data"]["logout"], true);
    // The shared marker is gone: the other instance refuses from the
    // message it heard, before its next reload of the durable list.
    flush_keys(&app).await;
    let refused = code_soon(&other, Some(&owner.access), ME, "UNAUTHENTICATED").await;
    assert_eq!(refused.code(), Some("UNAUTHENTICATED"), "{:?}", refused.body);
    let a = other.gql_as(&host("acme"), &member.access, ME).await;
    assert_eq!(a.body["data"]["me"]["email"], "mia@acme.com", "{:?}", a.body);
}

#[tokio::test]
async fn with_the_subscription_dropped_an_instance_asks_redis_and_believes_nothing_missed() {
    let _alone = SHARED_PUBSUB.write().await;
    let app = TestApp::builder(Backend::Postgres).with_redis().build().await;
    let other = app.second_instance().await;
    let owner = app.sign_up("acme").await;
    until_live(&other).await;
    // Every subscriber of the shared Redis loses its connection.
    let mut conn = redis_conn().await;
    let _: redis::Value = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut conn).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while other.state.cache.bus().live_since().is_some_and(|t| t.elapsed() > Duration::from_millis(200)) {
        assert!(Instant::now() < deadline, "the dropped subscription went unnoticed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A logout now is published to no one (or to a fresh subscription whose
    // copy has not caught up): the marker answers for it.
    assert_eq!(app.gql_as(&host("acme"), &owner.access, "mutation { logout }").await.body["data"]["logout"], true);
    let refused = other.gql_as(&host("acme"), &owner.access, ME).await;
    assert_eq!(refused.code(), Some("UNAUTHENTICATED"), "{:?}", refused.body);
    // Back and caught up, it still refuses (the durable list has it).
    until_live(&other).await;
    assert_eq!(other.gql_as(&host("acme"), &owner.access, ME).await.code(), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn a_tenant_deactivated_through_one_instance_is_inactive_on_the_other_at_once() {
    let app = TestApp::builder(Backend::Postgres).with_redis().build().await;
    let other = app.second_instance().await;
    let acme = app.create_tenant("acme").await;
    until_live(&other).await;
    // Both instances now hold the look-up in process.
    for instance in [&app, &other] {
        assert_eq!(instance.gql(&host("acme"), "{ tenant { subdomain } }").await.body["data"]["tenant"]["subdomain"], "acme");
    }
    set_active(&app, acme.id, false).await;
    let refused = code_soon(&other, None, "{ tenant { subdomain } }", "TENANT_INACTIVE").await;
    assert_eq!((refused.status, refused.code()), (403, Some("TENANT_INACTIVE")), "{:?}", refused.body);
    // Reactivation travels the same way: the other instance follows within
    // the same bound (its next request may still run before the message).
    set_active(&app, acme.id, true).await;
    let deadline = Instant::now() + Duration::from_millis(300);
    loop {
        let answer = other.gql(&host("acme"), "{ tenant { subdomain } }").await;
        if answer.body["data"]["tenant"]["subdomain"] == "acme" {
            break;
        }
        assert!(Instant::now() < deadline, "still refused 300 ms after reactivation: {:?}", answer.body);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
