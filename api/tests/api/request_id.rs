//! Request ids: accepted from `x-request-id` when sane, generated otherwise,
//! and returned.

use crate::helpers::*;

#[tokio::test]
async fn a_sane_request_id_is_echoed() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = app.gql_with("api.aggios.test", &[("x-request-id", "client-abc.123")], "{ __typename }").await;
    assert_eq!(a.headers.get("x-request-id").unwrap(), "client-abc.123");
}

#[tokio::test]
async fn a_missing_or_unsafe_request_id_is_replaced_by_a_generated_one() {
    let app = TestApp::new(Backend::Sqlite).await;
    let long = "x".repeat(200);
    for sent in [None, Some("has spaces"), Some("semi;colon"), Some(long.as_str())] {
        let headers: Vec<(&str, &str)> = sent.map(|s| ("x-request-id", s)).into_iter().collect();
        let a = app.gql_with("api.aggios.test", &headers, "{ __typename }").await;
        let id = a.headers.get("x-request-id").unwrap().to_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{sent:?} gave {id}");
    }
    // Errors answered before GraphQL runs carry it too.
    let a = app.gql("nobody.aggios.test", "{ __typename }").await;
    assert!(a.headers.get("x-request-id").is_some());
}
