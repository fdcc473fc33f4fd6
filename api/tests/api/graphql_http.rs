//! GraphQL over HTTP: GET for queries only, errors with stable codes.

use crate::helpers::*;

#[tokio::test]
async fn get_runs_queries() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = answer(app.client.get("/graphql").header("host", "api.aggios.test").header("apollo-require-preflight", "true").query("query", &"{ __typename }").send().await).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["data"]["__typename"], "Query");
}

#[tokio::test]
async fn get_refuses_mutations_with_a_clear_code() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = answer(
        app.client.get("/graphql").header("host", "api.aggios.test").header("apollo-require-preflight", "true").query("query", &"mutation { __typename }").send().await,
    )
    .await;
    assert_eq!(a.status, 405);
    assert_eq!(a.code(), Some("METHOD_NOT_ALLOWED"));
    assert!(a.body["errors"][0]["message"].as_str().unwrap().contains("POST"));
}

#[tokio::test]
async fn a_syntax_error_is_a_graphql_error_not_a_500() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = app.gql("api.aggios.test", "{ tenant { ").await;
    assert!(a.status < 500, "{}", a.status);
    assert!(a.body["errors"][0]["message"].is_string());
}

#[tokio::test]
async fn production_hides_introspection_and_suggestions() {
    let dev = TestApp::new(Backend::Sqlite).await;
    let a = dev.gql("api.aggios.test", "{ __schema { queryType { name } } }").await;
    assert_eq!(a.body["data"]["__schema"]["queryType"]["name"], "Query");

    let prod = TestApp::builder(Backend::Sqlite).production().build().await;
    let a = prod.gql("api.aggios.test", "{ __schema { queryType { name } } }").await;
    assert!(a.body["data"].is_null() || a.body["data"]["__schema"].is_null(), "{:?}", a.body);
    let a = prod.gql("api.aggios.test", "{ tenan { id } }").await;
    let msg = a.body["errors"][0]["message"].as_str().unwrap_or_default().to_owned();
    assert!(!msg.contains("Did you mean"), "{msg}");
}
