//! The playground is served from the binary and loads nothing from elsewhere.

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
