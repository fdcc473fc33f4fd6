//! The edge of the API, as a browser or a GraphQL client meets it: media
//! types and request errors (GraphQL over HTTP), body types, CSRF
//! prevention, batches, refused credentials, CORS, security headers,
//! compression, `X-API-Version` and `Retry-After`.

use std::{io::Read as _, time::Duration};

use serde_json::{Value, json};

use crate::helpers::*;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: (&str, &str) = ("content-type", "application/json");
const PREFLIGHT: (&str, &str) = ("apollo-require-preflight", "1");
const INTROSPECTION_QUERY: &str = include_str!("../fixtures/introspection_query.graphql");

const SIGN_UP: &str = "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }";
const LOGIN: &str = "mutation($i: LoginInput!) { login(input: $i) { accessToken refreshToken } }";
const REFRESH: &str = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }";
const PLATFORM_LOGIN: &str = "mutation($e: String!, $p: String!) { platformLogin(email: $e, password: $p) { accessToken } }";
const UPLOAD: &str = "mutation($input: UploadDocumentInput!) { uploadDocument(input: $input) { id } }";

fn sign_up_vars(sub: &str) -> Value {
    json!({ "i": {
        "agencyName": format!("Agency {sub}"), "subdomain": sub, "email": format!("owner@{sub}.com"),
        "password": PASSWORD, "firstName": "Olga", "lastName": "Owner",
    } })
}

fn sign_up_body(sub: &str) -> String {
    json!({ "query": SIGN_UP, "variables": sign_up_vars(sub) }).to_string()
}

async fn agency_exists(app: &TestApp, sub: &str) -> bool {
    aggios::store::tenants::by_subdomain(app.state.db.platform(), sub).await.expect("tenant look-up").is_some()
}

/// POSTs `body`, sent as it is, to `/graphql` on `host` with `headers` (and
/// no others: no content type unless `headers` has one).
async fn post(app: &TestApp, host: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Answer {
    answer(post_raw(app, host, headers, body).await).await
}

async fn post_raw(app: &TestApp, host: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> poem::test::TestResponse {
    let mut req = app.client.post("/graphql").header("host", host).body(body.into());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await
}

/// POSTs a JSON body to `/graphql` on `host` with `headers`.
async fn post_json(app: &TestApp, host: &str, headers: &[(&str, &str)], body: &Value) -> Answer {
    post(app, host, &[&[JSON][..], headers].concat(), body.to_string()).await
}

async fn get_graphql(app: &TestApp, host: &str, headers: &[(&str, &str)], query: &str) -> Answer {
    let mut req = app.client.get("/graphql").header("host", host).query("query", &query);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    answer(req.send().await).await
}

fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
    a.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Every value of a (list) header, lower-cased, split at commas.
fn header_list(headers: &poem::http::HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .collect()
}

fn has_data(a: &Answer) -> bool {
    a.body.as_object().is_some_and(|o| o.contains_key("data"))
}

// --- GraphQL over HTTP: media types and request errors ---------------------

/// Requests that cannot run, with the code each is answered with.
fn request_errors() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        ("a syntax error", json!({ "query": "{ tenant { " }), "GRAPHQL_PARSE_FAILED"),
        ("an unknown field", json!({ "query": "{ nope }" }), "GRAPHQL_VALIDATION_FAILED"),
        (
            "null for an ID!",
            json!({ "query": "query($id: ID!) { __typename }", "variables": { "id": null } }),
            "BAD_USER_INPUT",
        ),
        (
            "a string for an Int",
            json!({ "query": "query($n: Int) { __typename }", "variables": { "n": "three" } }),
            "BAD_USER_INPUT",
        ),
        (
            "an operation name the document lacks",
            json!({ "query": "query A { __typename }", "operationName": "B" }),
            "OPERATION_RESOLUTION_FAILURE",
        ),
    ]
}

#[tokio::test]
async fn graphql_response_json_is_answered_in_that_media_type() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = post_json(&app, API_HOST, &[("accept", GRAPHQL_RESPONSE)], &json!({ "query": "{ __typename }" })).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert!(header(&a, "content-type").is_some_and(|ct| ct.starts_with(GRAPHQL_RESPONSE)), "{:?}", a.headers);
    assert_eq!(a.body["data"]["__typename"], "Query");
}

#[tokio::test]
async fn request_errors_are_400_without_data_in_graphql_response_json() {
    let app = TestApp::new(Backend::Sqlite).await;
    for (what, body, code) in request_errors() {
        let a = post_json(&app, API_HOST, &[("accept", GRAPHQL_RESPONSE)], &body).await;
        assert_eq!(a.status, 400, "{what}: {:?}", a.body);
        assert!(header(&a, "content-type").is_some_and(|ct| ct.starts_with(GRAPHQL_RESPONSE)), "{what}: {:?}", a.headers);
        assert!(!has_data(&a), "{what}: {:?}", a.body);
        assert_eq!(a.code(), Some(code), "{what}: {:?}", a.body);
    }
}

#[tokio::test]
async fn request_errors_are_200_without_data_and_with_the_same_codes_in_json() {
    let app = TestApp::new(Backend::Sqlite).await;
    for (what, body, code) in request_errors() {
        let a = post_json(&app, API_HOST, &[("accept", "application/json")], &body).await;
        assert_eq!(a.status, 200, "{what}: {:?}", a.body);
        assert!(header(&a, "content-type").is_some_and(|ct| ct.starts_with("application/json")), "{what}: {:?}", a.headers);
        assert!(!has_data(&a), "{what}: {:?}", a.body);
        assert_eq!(a.code(), Some(code), "{what}: {:?}", a.body);
    }
}

#[tokio::test]
async fn a_syntax_error_names_its_line_and_column_without_the_parser_diagram() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = post_json(&app, API_HOST, &[("accept", GRAPHQL_RESPONSE)], &json!({ "query": "{ tenant { " })).await;
    let message = a.body["errors"][0]["message"].as_str().unwrap_or_else(|| panic!("{:?}", a.body));
    assert!(message.starts_with("syntax error at line 1, column "), "{message}");
    assert!(!message.contains("-->") && !message.lines().any(|l| l.trim_start().starts_with('|')), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
}

#[tokio::test]
async fn a_field_error_is_200_with_data_in_both_media_types() {
    let app = TestApp::new(Backend::Sqlite).await;
    for accept in [GRAPHQL_RESPONSE, "application/json"] {
        let a = post_json(&app, API_HOST, &[("accept", accept)], &json!({ "query": "{ me { id } }" })).await;
        assert_eq!(a.status, 200, "{accept}: {:?}", a.body);
        assert_eq!(a.code(), Some("UNAUTHENTICATED"), "{accept}: {:?}", a.body);
        assert!(has_data(&a), "{accept}: {:?}", a.body);
        assert_eq!(a.body["errors"][0]["path"], json!(["me"]), "{accept}: {:?}", a.body);
    }
}

// --- POST bodies --------------------------------------------------------------

#[tokio::test]
async fn a_text_plain_body_is_415_and_does_not_run() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = post(&app, API_HOST, &[("content-type", "text/plain"), PREFLIGHT], sign_up_body("plain")).await;
    assert_eq!((a.status, a.code()), (415, Some("UNSUPPORTED_MEDIA_TYPE")), "{:?}", a.body);
    assert!(a.body["errors"][0]["message"].as_str().unwrap_or_default().contains("application/json"), "{:?}", a.body);
    assert!(!agency_exists(&app, "plain").await, "the signUp sent as text/plain ran");
    // The same request as JSON runs: the content type was the only reason.
    let a = post(&app, API_HOST, &[JSON], sign_up_body("plain")).await;
    assert!(a.body["data"]["signUp"]["accessToken"].is_string(), "{:?}", a.body);
    assert!(agency_exists(&app, "plain").await);
}

#[tokio::test]
async fn a_body_without_a_content_type_is_415() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = post(&app, API_HOST, &[PREFLIGHT], json!({ "query": "{ __typename }" }).to_string()).await;
    assert_eq!((a.status, a.code()), (415, Some("UNSUPPORTED_MEDIA_TYPE")), "{:?}", a.body);
}

#[tokio::test]
async fn a_json_body_in_a_charset_other_than_utf8_is_415() {
    let app = TestApp::new(Backend::Sqlite).await;
    let body = json!({ "query": "{ __typename }" }).to_string();
    let a = post(&app, API_HOST, &[("content-type", "application/json; charset=latin1")], body.clone()).await;
    assert_eq!((a.status, a.code()), (415, Some("UNSUPPORTED_MEDIA_TYPE")), "{:?}", a.body);
    assert!(a.body["errors"][0]["message"].as_str().unwrap_or_default().contains("latin1"), "{:?}", a.body);
    let a = post(&app, API_HOST, &[("content-type", "application/json; charset=utf-8")], body).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["data"]["__typename"], "Query");
}

#[tokio::test]
async fn an_empty_body_is_400() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = post(&app, API_HOST, &[JSON], "").await;
    assert_eq!((a.status, a.code()), (400, Some("BAD_USER_INPUT")), "{:?}", a.body);
    assert!(!has_data(&a), "{:?}", a.body);
}

#[tokio::test]
async fn a_json_body_without_a_query_is_400_bad_user_input() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = post_json(&app, API_HOST, &[], &json!({ "variables": {} })).await;
    assert_eq!((a.status, a.code()), (400, Some("BAD_USER_INPUT")), "{:?}", a.body);
    assert!(a.body["errors"][0]["message"].as_str().unwrap_or_default().contains("query"), "{:?}", a.body);
}

// --- CSRF prevention ----------------------------------------------------------

#[tokio::test]
async fn a_get_without_a_preflight_header_is_refused_as_csrf() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = get_graphql(&app, API_HOST, &[], "{ __typename }").await;
    assert_eq!((a.status, a.code()), (400, Some("CSRF_PREVENTED")), "{:?}", a.body);
    assert!(!has_data(&a), "{:?}", a.body);
}

#[tokio::test]
async fn a_get_with_a_preflight_header_runs() {
    let app = TestApp::new(Backend::Sqlite).await;
    for forced in [("apollo-require-preflight", "true"), ("x-apollo-operation-name", "X")] {
        let a = get_graphql(&app, API_HOST, &[forced], "{ __typename }").await;
        assert_eq!(a.status, 200, "{forced:?}: {:?}", a.body);
        assert_eq!(a.body["data"]["__typename"], "Query", "{forced:?}");
    }
}

#[tokio::test]
async fn a_json_post_needs_no_preflight_header() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = post_json(&app, API_HOST, &[], &json!({ "query": "{ __typename }" })).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["data"]["__typename"], "Query");
}

/// An agency `sub` with its owner, a client and a project: (owner, project id).
async fn agency_with_project(app: &TestApp, sub: &str) -> (Signed, String) {
    let owner = app.sign_up(sub).await;
    let c = app.gql_as(&host(sub), &owner.access, "mutation { createClient(input: { name: \"Acme\" }) { id } }").await;
    let client = c.body["data"]["createClient"]["id"].as_str().unwrap_or_else(|| panic!("{:?}", c.body)).to_owned();
    let p = app
        .gql_as(&host(sub), &owner.access, &format!("mutation {{ createProject(input: {{ clientId: \"{client}\", name: \"Site\" }}) {{ id }} }}"))
        .await;
    let project = p.body["data"]["createProject"]["id"].as_str().unwrap_or_else(|| panic!("{:?}", p.body)).to_owned();
    (owner, project)
}

/// A multipart upload of `bytes` as `text/plain` to `project`, as `token`,
/// with `headers` besides the content type and authorization.
async fn upload(app: &TestApp, sub: &str, token: &str, project: &str, bytes: &[u8], headers: &[(&str, &str)]) -> Answer {
    let file = FilePart { path: "variables.input.file", filename: "notes.txt", content_type: "text/plain", bytes };
    let (body, content_type) = multipart_body(UPLOAD, &json!({ "input": { "projectId": project, "file": null } }), &[file]);
    let authorization = format!("Bearer {token}");
    let sent = [&[("content-type", content_type.as_str()), ("authorization", authorization.as_str())][..], headers].concat();
    post(app, &host(sub), &sent, body).await
}

async fn document_count(app: &TestApp, sub: &str, token: &str) -> usize {
    let a = app.gql_as(&host(sub), token, "{ documents(first: 100) { edges { node { id } } } }").await;
    a.body["data"]["documents"]["edges"].as_array().unwrap_or_else(|| panic!("{:?}", a.body)).len()
}

async fn stored_keys(app: &TestApp, tenant: &str) -> Vec<String> {
    let prefix = aggios::objects::tenant_prefix(tenant.parse().expect("tenant id"));
    app.state.objects.list(&prefix).await.expect("listing").into_iter().map(|o| o.key).collect()
}

#[tokio::test]
async fn a_multipart_upload_needs_a_preflight_header_and_without_one_stores_nothing() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (owner, project) = agency_with_project(&app, "acme").await;
    let bytes = b"minutes of the kick-off meeting\n".repeat(10);

    let refused = upload(&app, "acme", &owner.access, &project, &bytes, &[]).await;
    assert_eq!((refused.status, refused.code()), (400, Some("CSRF_PREVENTED")), "{:?}", refused.body);
    assert_eq!(document_count(&app, "acme", &owner.access).await, 0);
    assert_eq!(stored_keys(&app, &owner.tenant_id).await, Vec::<String>::new());

    let taken = upload(&app, "acme", &owner.access, &project, &bytes, &[PREFLIGHT]).await;
    assert_eq!(taken.status, 200, "{:?}", taken.body);
    assert!(taken.body["data"]["uploadDocument"]["id"].is_string(), "{:?}", taken.body);
    assert_eq!(document_count(&app, "acme", &owner.access).await, 1);
    assert!(!stored_keys(&app, &owner.tenant_id).await.is_empty());
}

// --- Batches --------------------------------------------------------------------

#[tokio::test]
async fn a_batch_answers_one_response_per_operation_in_order() {
    let app = TestApp::new(Backend::Sqlite).await;
    app.create_tenant("acme").await;
    let batch = json!([{ "query": "{ tenant { subdomain } }" }, { "query": "{ __typename }" }]);
    let a = post_json(&app, &host("acme"), &[], &batch).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let answers = a.body.as_array().unwrap_or_else(|| panic!("not an array: {:?}", a.body));
    assert_eq!(answers.len(), 2, "{:?}", a.body);
    assert_eq!(answers[0]["data"]["tenant"]["subdomain"], "acme", "{:?}", a.body);
    assert_eq!(answers[1]["data"]["__typename"], "Query", "{:?}", a.body);
}

#[tokio::test]
async fn a_failing_operation_in_a_batch_does_not_roll_back_the_others() {
    let app = TestApp::new(Backend::Sqlite).await;
    let owner = app.sign_up("acme").await;
    let create = "mutation($n: String!) { createClient(input: { name: $n }) { id name } }";
    let batch = json!([
        { "query": create, "variables": { "n": "Before" } },
        { "query": create, "variables": { "n": "" } },
        { "query": create, "variables": { "n": "After" } },
    ]);
    let authorization = format!("Bearer {}", owner.access);
    let a = post_json(&app, &host("acme"), &[("authorization", &authorization)], &batch).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body[0]["data"]["createClient"]["name"], "Before", "{:?}", a.body);
    assert_eq!(a.body[1]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{:?}", a.body);
    assert_eq!(a.body[2]["data"]["createClient"]["name"], "After", "{:?}", a.body);

    let listed = app.gql_as(&host("acme"), &owner.access, "{ clients(first: 50) { edges { node { name } } } }").await;
    let mut names: Vec<&str> = listed.body["data"]["clients"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{:?}", listed.body))
        .iter()
        .filter_map(|e| e["node"]["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["After", "Before"]);
}

#[tokio::test]
async fn a_batch_over_max_batch_operations_is_400_naming_the_limit() {
    let app = TestApp::builder(Backend::Sqlite).with_settings(|s| s.server.max_batch_operations = 2).build().await;
    let op = json!({ "query": "{ __typename }" });
    let a = post_json(&app, API_HOST, &[], &json!([op, op, op])).await;
    assert_eq!((a.status, a.code()), (400, Some("BATCH_TOO_LARGE")), "{:?}", a.body);
    assert_eq!((&a.body["errors"][0]["extensions"]["operations"], &a.body["errors"][0]["extensions"]["limit"]), (&json!(3), &json!(2)));
    let message = a.body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("at most 2"), "{message}");
    // At the limit, it runs.
    let a = post_json(&app, API_HOST, &[], &json!([op, op])).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body.as_array().map(Vec::len), Some(2), "{:?}", a.body);
}

#[tokio::test]
async fn an_empty_batch_is_400() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = post_json(&app, API_HOST, &[], &json!([])).await;
    assert_eq!((a.status, a.code()), (400, Some("BAD_USER_INPUT")), "{:?}", a.body);
}

// --- Refused credentials ----------------------------------------------------------

/// With `Authorization: {authorization}` (a credential that is not valid on
/// acme's host), signing up, in and refreshing run as they would without
/// it; `me` and the public `tenant` answer `UNAUTHENTICATED` with HTTP 200.
/// Needs the agency `acme` (owner `owner@acme.com`) and the platform admin
/// `admin_email`; signs up the agency `new_sub`.
async fn only_signing_in_ignores(app: &TestApp, authorization: &str, new_sub: &str, admin_email: &str) {
    let auth = [("authorization", authorization)];
    let acme = host("acme");

    let a = app.gql_vars(API_HOST, &auth, SIGN_UP, sign_up_vars(new_sub)).await;
    assert!(a.body["data"]["signUp"]["accessToken"].is_string(), "{authorization}: signUp: {:?}", a.body);

    let a = app.gql_vars(&acme, &auth, LOGIN, json!({ "i": { "email": "owner@acme.com", "password": PASSWORD } })).await;
    let refresh = a.body["data"]["login"]["refreshToken"].as_str().unwrap_or_else(|| panic!("{authorization}: login: {:?}", a.body));

    let a = app.gql_vars(&acme, &auth, REFRESH, json!({ "t": refresh })).await;
    assert!(a.body["data"]["refreshSession"]["accessToken"].is_string(), "{authorization}: refreshSession: {:?}", a.body);

    let a = app.gql_vars(API_HOST, &auth, PLATFORM_LOGIN, json!({ "e": admin_email, "p": PASSWORD })).await;
    assert!(a.body["data"]["platformLogin"]["accessToken"].is_string(), "{authorization}: platformLogin: {:?}", a.body);

    for query in ["{ me { id } }", "{ tenant { subdomain } }"] {
        let a = app.gql_with(&acme, &auth, query).await;
        assert_eq!((a.status, a.code()), (200, Some("UNAUTHENTICATED")), "{authorization}: {query}: {:?}", a.body);
    }
}

async fn platform_admin_email(app: &TestApp) -> String {
    let email = format!("root-{}@aggios.test", uuid::Uuid::now_v7().simple());
    let hash = app.state.auth.passwords.hash(PASSWORD).await.expect("hash");
    aggios::store::platform::create_admin(app.state.db.platform(), email.clone(), hash).await.expect("admin created");
    email
}

on_both_backends! {
    async fn a_garbage_or_foreign_token_is_refused_except_for_signing_in(app) {
        app.sign_up("acme").await;
        let globex = app.sign_up("globex").await;
        let admin = platform_admin_email(&app).await;

        let a = app.gql(&host("acme"), "{ tenant { subdomain } }").await;
        assert_eq!(a.body["data"]["tenant"]["subdomain"], "acme", "without a credential: {:?}", a.body);

        only_signing_in_ignores(&app, "Bearer garbage", "fresh-one", &admin).await;
        only_signing_in_ignores(&app, &format!("Bearer {}", globex.access), "fresh-two", &admin).await;
    }
}

crate::helpers::on_apps! {
    async fn an_expired_token_is_refused_except_for_signing_in(app) {
        let owner = app.sign_up("acme").await;
        let admin = platform_admin_email(&app).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        only_signing_in_ignores(&app, &format!("Bearer {}", owner.access), "fresh-one", &admin).await;
    }
    sqlite => TestApp::builder(Backend::Sqlite).with_settings(|s| s.auth.access_token_ttl_secs = 1).build(),
    postgres => TestApp::builder(Backend::Postgres).with_settings(|s| s.auth.access_token_ttl_secs = 1).build()
}

on_both_backends! {
    async fn platform_logout_everywhere_ends_the_admins_token(app) {
        app.create_tenant("acme").await;
        let admin = app.platform_admin().await;
        let tenants = app.gql_as(API_HOST, &admin, "{ platformTenants { subdomain } }").await;
        assert_eq!(tenants.body["data"]["platformTenants"][0]["subdomain"], "acme", "{:?}", tenants.body);

        let out = app.gql_as(API_HOST, &admin, "mutation { platformLogoutEverywhere }").await;
        assert_eq!(out.body["data"]["platformLogoutEverywhere"], true, "{:?}", out.body);

        let after = app.gql_as(API_HOST, &admin, "{ platformTenants { subdomain } }").await;
        assert_eq!((after.status, after.code()), (200, Some("UNAUTHENTICATED")), "{:?}", after.body);
    }
}

// --- CORS -------------------------------------------------------------------------

const LOCALHOST: &str = "http://localhost:3000";

async fn preflight(app: &TestApp, host: &str, origin: &str) -> Answer {
    let resp = app
        .client
        .options("/graphql")
        .header("host", host)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type,x-tenant")
        .send()
        .await;
    answer(resp).await
}

async fn post_from(app: &TestApp, host: &str, origin: &str) -> Answer {
    post_json(app, host, &[("origin", origin)], &json!({ "query": "{ __typename }" })).await
}

fn granted(a: &Answer) -> Option<&str> {
    header(a, "access-control-allow-origin")
}

/// Whether `origin` is granted on `host`, by preflight and by the actual
/// request alike (the two must agree).
async fn grants(app: &TestApp, host: &str, origin: &str) -> bool {
    let pre = preflight(app, host, origin).await;
    let actual = post_from(app, host, origin).await;
    assert_eq!(actual.status, 200, "{origin} on {host}: the request itself runs either way: {:?}", actual.body);
    match (granted(&pre), granted(&actual)) {
        (Some(p), Some(a)) => {
            assert_eq!((pre.status, p, a), (204, origin, origin), "{origin} on {host}");
            true
        }
        (None, None) => {
            assert_eq!(pre.status, 403, "{origin} on {host}: {:?}", pre.body);
            false
        }
        (p, a) => panic!("{origin} on {host}: the preflight grants {p:?} and the request {a:?}"),
    }
}

fn with_localhost_allowed(backend: Backend) -> impl Future<Output = TestApp> {
    TestApp::builder(backend).with_settings(|s| s.server.cors_allowed_origins = vec![LOCALHOST.into()]).build()
}

crate::helpers::on_apps! {
    async fn a_configured_origin_is_granted_with_the_headers_clients_send(app) {
        let pre = preflight(&app, API_HOST, LOCALHOST).await;
        assert_eq!(pre.status, 204, "{:?}", pre.body);
        assert_eq!(granted(&pre), Some(LOCALHOST));
        let allowed = header_list(&pre.headers, "access-control-allow-headers");
        for h in ["authorization", "x-api-key", "x-tenant", "x-api-version", "apollo-require-preflight", "content-type"] {
            assert!(allowed.iter().any(|a| a == h), "{h} not in {allowed:?}");
        }
        assert!(header_list(&pre.headers, "vary").iter().any(|v| v == "origin"), "{:?}", pre.headers);

        let actual = post_from(&app, API_HOST, LOCALHOST).await;
        assert_eq!(actual.status, 200, "{:?}", actual.body);
        assert_eq!(granted(&actual), Some(LOCALHOST));
        assert!(header_list(&actual.headers, "vary").iter().any(|v| v == "origin"), "{:?}", actual.headers);
    }
    sqlite => with_localhost_allowed(Backend::Sqlite),
    postgres => with_localhost_allowed(Backend::Postgres)
}

crate::helpers::on_apps! {
    async fn an_unlisted_origin_gets_no_grant(app) {
        let pre = preflight(&app, API_HOST, "http://localhost:4000").await;
        assert_eq!(pre.status, 403, "{:?}", pre.body);
        assert_eq!(granted(&pre), None);
        let actual = post_from(&app, API_HOST, "http://localhost:4000").await;
        assert_eq!(granted(&actual), None);
        assert!(!grants(&app, API_HOST, "https://evil.example").await);
    }
    sqlite => with_localhost_allowed(Backend::Sqlite),
    postgres => with_localhost_allowed(Backend::Postgres)
}

crate::helpers::on_apps! {
    async fn an_agencys_own_origins_are_granted_on_the_api_host_and_its_own_hosts_only(app) {
        app.create_tenant("acme").await;
        app.create_tenant("globex").await;
        app.create_tenant_with_domain("initech", "portal.initech.example").await;
        let acme = "https://acme.aggios.test";
        assert!(grants(&app, API_HOST, acme).await);
        assert!(grants(&app, &host("acme"), acme).await);
        assert!(!grants(&app, &host("globex"), acme).await);
        assert!(!grants(&app, API_HOST, "http://acme.aggios.test").await);

        let initech = "https://portal.initech.example";
        assert!(grants(&app, API_HOST, initech).await);
        assert!(grants(&app, "portal.initech.example", initech).await);
        assert!(grants(&app, &host("initech"), initech).await);
        assert!(!grants(&app, &host("acme"), initech).await);
        assert!(!grants(&app, API_HOST, "http://portal.initech.example").await);
    }
    sqlite => with_localhost_allowed(Backend::Sqlite),
    postgres => with_localhost_allowed(Backend::Postgres)
}

// --- Security headers ---------------------------------------------------------------

async fn graphql_and_healthz(app: &TestApp) -> [Answer; 2] {
    [post_json(app, API_HOST, &[], &json!({ "query": "{ __typename }" })).await, app.get("/healthz").await]
}

#[tokio::test]
async fn every_answer_forbids_sniffing_framing_and_referrers_and_sends_no_hsts_by_default() {
    let app = TestApp::new(Backend::Sqlite).await;
    for a in graphql_and_healthz(&app).await {
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(header(&a, "x-content-type-options"), Some("nosniff"), "{:?}", a.headers);
        assert_eq!(header(&a, "x-frame-options"), Some("DENY"), "{:?}", a.headers);
        assert_eq!(header(&a, "referrer-policy"), Some("no-referrer"), "{:?}", a.headers);
        assert_eq!(header(&a, "strict-transport-security"), None, "{:?}", a.headers);
    }
}

#[tokio::test]
async fn hsts_is_sent_when_configured() {
    let app = TestApp::builder(Backend::Sqlite).with_settings(|s| s.server.hsts_max_age_secs = 31_536_000).build().await;
    for a in graphql_and_healthz(&app).await {
        assert_eq!(header(&a, "strict-transport-security"), Some("max-age=31536000; includeSubDomains"), "{:?}", a.headers);
    }
}

#[tokio::test]
async fn the_playground_keeps_its_own_content_security_policy() {
    let app = TestApp::new(Backend::Sqlite).await;
    let resp = app.client.get("/playground").send().await;
    resp.assert_status_is_ok();
    let headers = resp.0.headers();
    let csp: Vec<_> = headers.get_all("content-security-policy").iter().filter_map(|v| v.to_str().ok()).collect();
    assert_eq!(csp.len(), 1, "{csp:?}");
    assert!(csp[0].starts_with("default-src 'none'") && csp[0].contains("frame-ancestors 'none'"), "{csp:?}");
    // Its own nosniff is not doubled by the one every answer gets.
    assert_eq!(headers.get_all("x-content-type-options").iter().count(), 1, "{headers:?}");
    assert_eq!(headers.get("x-frame-options").and_then(|v| v.to_str().ok()), Some("DENY"));
}

// --- Compression ------------------------------------------------------------------

/// POSTs the full introspection query; (headers, raw body bytes).
async fn introspect(app: &TestApp, accept_encoding: Option<&str>) -> (poem::http::HeaderMap, Vec<u8>) {
    let body = json!({ "query": INTROSPECTION_QUERY, "operationName": "IntrospectionQuery" }).to_string();
    let mut headers = vec![JSON];
    headers.extend(accept_encoding.map(|e| ("accept-encoding", e)));
    let resp = post_raw(app, API_HOST, &headers, body).await;
    assert_eq!(resp.0.status(), 200);
    let headers = resp.0.headers().clone();
    (headers, resp.0.into_body().into_bytes().await.expect("body").to_vec())
}

fn decode(encoding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "br" => brotli::Decompressor::new(bytes, 4096).read_to_end(&mut out),
        "gzip" => flate2::read::GzDecoder::new(bytes).read_to_end(&mut out),
        other => panic!("unexpected encoding {other}"),
    }
    .unwrap_or_else(|e| panic!("not valid {encoding}: {e}"));
    out
}

#[tokio::test]
async fn a_large_answer_is_compressed_as_the_client_accepts() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (plain_headers, plain) = introspect(&app, None).await;
    assert_eq!(plain_headers.get("content-encoding"), None);
    let expected: Value = serde_json::from_slice(&plain).expect("JSON");
    assert!(expected["data"]["__schema"]["types"].is_array(), "{expected}");
    for encoding in ["br", "gzip"] {
        let (headers, bytes) = introspect(&app, Some(encoding)).await;
        assert_eq!(headers.get("content-encoding").and_then(|v| v.to_str().ok()), Some(encoding), "{headers:?}");
        assert!(header_list(&headers, "vary").iter().any(|v| v == "accept-encoding"), "{headers:?}");
        assert!(bytes.len() < plain.len() / 2, "{encoding}: {} of {} bytes", bytes.len(), plain.len());
        let decoded: Value = serde_json::from_slice(&decode(encoding, &bytes)).expect("decoded JSON");
        assert_eq!(decoded, expected, "{encoding}");
    }
}

#[tokio::test]
async fn a_small_answer_is_not_compressed() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = post_json(&app, API_HOST, &[("accept-encoding", "br, gzip")], &json!({ "query": "{ __typename }" })).await;
    assert_eq!(header(&a, "content-encoding"), None, "{:?}", a.headers);
    assert_eq!(a.body["data"]["__typename"], "Query");
}

#[tokio::test]
async fn a_file_download_is_not_compressed() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (owner, project) = agency_with_project(&app, "acme").await;
    // Text, well over the compression threshold, of a compressible type.
    let bytes = b"minutes of the kick-off meeting\n".repeat(256);
    let up = upload(&app, "acme", &owner.access, &project, &bytes, &[PREFLIGHT]).await;
    let doc = up.body["data"]["uploadDocument"]["id"].as_str().unwrap_or_else(|| panic!("{:?}", up.body));
    let link = app
        .gql_as_vars(&host("acme"), &owner.access, "query($id: ID!) { document(id: $id) { downloadUrl { url } } }", json!({ "id": doc }))
        .await;
    let url = link.body["data"]["document"]["downloadUrl"]["url"].as_str().unwrap_or_else(|| panic!("{:?}", link.body));
    assert!(url.starts_with("/files/"), "{url}");

    let resp = app.client.get(url).header("host", host("acme")).header("accept-encoding", "br, gzip").send().await;
    assert_eq!(resp.0.status(), 200);
    assert_eq!(resp.0.headers().get("content-encoding"), None, "{:?}", resp.0.headers());
    assert!(resp.0.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.starts_with("text/plain")));
    assert_eq!(resp.0.into_body().into_bytes().await.expect("body").to_vec(), bytes);
}

// --- X-API-Version -------------------------------------------------------------------

#[tokio::test]
async fn v1_is_served_and_named_on_the_answer_whether_asked_for_or_not() {
    let app = TestApp::new(Backend::Sqlite).await;
    for sent in [None, Some("v1")] {
        let headers: Vec<_> = sent.map(|v| ("x-api-version", v)).into_iter().collect();
        let a = post_json(&app, API_HOST, &headers, &json!({ "query": "{ __typename }" })).await;
        assert_eq!(a.status, 200, "{sent:?}: {:?}", a.body);
        assert_eq!(header(&a, "x-api-version"), Some("v1"), "{sent:?}");
    }
}

#[tokio::test]
async fn another_api_version_is_refused_before_anything_runs() {
    let app = TestApp::new(Backend::Sqlite).await;
    let a = post(&app, API_HOST, &[JSON, ("x-api-version", "v2")], sign_up_body("later")).await;
    assert_eq!((a.status, a.code()), (400, Some("UNSUPPORTED_API_VERSION")), "{:?}", a.body);
    let message = a.body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("v1") && message.contains("v2"), "{message}");
    assert!(!agency_exists(&app, "later").await, "the signUp sent for v2 ran");
}

// --- Retry-After ----------------------------------------------------------------------

#[tokio::test]
async fn rate_limited_answers_carry_retry_after_as_in_the_error() {
    let app = TestApp::new(Backend::Sqlite).await;
    app.sign_up("acme").await;
    let wrong = json!({ "i": { "email": "owner@acme.com", "password": "guess guess guess" } });
    for attempt in 1..=20 {
        let a = app.gql_vars(&host("acme"), &[("x-forwarded-for", "192.0.2.66")], LOGIN, wrong.clone()).await;
        if a.code() == Some("INVALID_CREDENTIALS") {
            assert_eq!(header(&a, "retry-after"), None, "attempt {attempt}");
            continue;
        }
        assert_eq!(a.code(), Some("RATE_LIMITED"), "attempt {attempt}: {:?}", a.body);
        let retry_after = a.body["errors"][0]["extensions"]["retryAfter"].as_u64().unwrap_or_else(|| panic!("{:?}", a.body));
        assert_eq!(header(&a, "retry-after").and_then(|v| v.parse::<u64>().ok()), Some(retry_after), "{:?}", a.headers);
        return;
    }
    panic!("20 wrong passwords and no RATE_LIMITED");
}
