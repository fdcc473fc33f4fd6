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

#[tokio::test]
async fn assets_go_out_precompressed_and_are_revalidated_by_their_etag() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (_, script) = aggios::http::playground::embedded()[1];
    let get = async |encoding: Option<&str>, tag: Option<&str>| {
        let mut req = app.client.get("/playground/playground.js");
        if let Some(e) = encoding {
            req = req.header("accept-encoding", e);
        }
        if let Some(t) = tag {
            req = req.header("if-none-match", t);
        }
        let resp = req.send().await;
        let header = |name: &str| resp.0.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let (status, encoding, etag, vary) = (resp.0.status().as_u16(), header("content-encoding"), header("etag"), header("vary"));
        let body = resp.0.into_body().into_bytes().await.unwrap();
        (status, encoding, etag.unwrap_or_default(), vary.unwrap_or_default(), body)
    };
    let (status, encoding, plain_tag, vary, body) = get(None, None).await;
    assert_eq!((status, encoding.as_deref()), (200, None));
    assert_eq!(&body[..], script, "without Accept-Encoding, the file as built");
    assert!(vary.contains("accept-encoding"), "{vary}");
    let (status, encoding, br_tag, _, br) = get(Some("gzip, deflate, br, zstd"), None).await;
    assert_eq!((status, encoding.as_deref()), (200, Some("br")));
    assert!(br.len() * 3 < script.len(), "brotli: {} of {} bytes", br.len(), script.len());
    let (_, encoding, gz_tag, _, gz) = get(Some("gzip"), None).await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert!(gz.len() * 2 < script.len(), "gzip: {} of {} bytes", gz.len(), script.len());
    assert!(plain_tag.starts_with('"') && plain_tag != br_tag && br_tag != gz_tag, "one tag per encoding: {plain_tag} {br_tag} {gz_tag}");
    // A browser revalidating what it has: 304, no body.
    let (status, _, tag, _, body) = get(Some("br"), Some(&br_tag)).await;
    assert_eq!((status, tag.as_str(), body.len()), (304, br_tag.as_str(), 0));
    let (status, ..) = get(Some("br"), Some(&plain_tag)).await;
    assert_eq!(status, 200, "another encoding's tag does not match");
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
