//! The playground is served from the binary and loads nothing from elsewhere.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn the_playground_is_served_with_a_same_origin_policy() {
    let app = TestApp::new(Backend::Sqlite).await;
    let resp = app.client.get("/playground").send().await;
    resp.assert_status_is_ok();
    let csp = resp.0.headers().get("content-security-policy").unwrap().to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));
    let html = resp.0.into_body().into_string().await.unwrap();
    assert!(html.contains("/playground/playground.js") && html.contains("/playground/playground.css"));
    for asset in ["/playground/playground.js", "/playground/playground.css"] {
        app.client.get(asset).send().await.assert_status_is_ok();
    }
    app.client.get("/playground/other.js").send().await.assert_status(poem::http::StatusCode::NOT_FOUND);
}

#[test]
fn the_embedded_page_references_no_other_origin() {
    for (name, bytes) in aggios::http::playground::embedded() {
        let text = String::from_utf8_lossy(bytes);
        for needle in ["src=\"http", "href=\"http", "url(http", "url(\"http", "url('http", "@import", "src=\"//", "href=\"//"] {
            assert!(!text.contains(needle), "{name} contains {needle}");
        }
    }
}

/// The standard introspection query, as GraphiQL's Docs and completion
/// (and graphql-codegen) load the schema.
async fn introspect(app: &TestApp) -> Answer {
    let body = json!({ "query": crate::schema::INTROSPECTION_QUERY, "operationName": "IntrospectionQuery" });
    answer(app.client.post("/graphql").header("host", API_HOST).body_json(&body).send().await).await
}

#[tokio::test]
async fn graphiql_loads_the_whole_schema_in_development() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = introspect(&app).await;
    assert_eq!(a.status, 200);
    assert!(a.body["errors"].is_null(), "{:?}", a.body["errors"]);
    let types: Vec<&str> =
        a.body["data"]["__schema"]["types"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    for name in ["Query", "Mutation", "Client", "Project", "Document", "AuthPayload"] {
        assert!(types.contains(&name), "{name} is missing from {types:?}");
    }
    assert_eq!(a.body["data"]["__schema"]["queryType"]["name"], "Query");
}

#[tokio::test]
async fn production_answers_introspection_with_nothing() {
    let app = TestApp::builder(Backend::Sqlite).production().build().await;
    let a = introspect(&app).await;
    assert!(a.body["data"]["__schema"].is_null(), "{:?}", a.body);
    assert!(!a.body.to_string().contains("\"Client\""), "{:?}", a.body);
}
