//! Persisted queries: Apollo's automatic persisted queries (miss, register,
//! hit, by POST and GET, per agency, shared by replicas through Redis), the
//! cache of parsed and validated documents, and each agency's trusted
//! documents (manifests, the mode for API keys, isolation).

use std::sync::Arc;

use aggios::graphql::{SchemaOptions, document_cache::DocumentCache, serving_schema};
use serde_json::{Value, json};

use crate::helpers::*;

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn post(app: &TestApp, host: &str, headers: &[(&str, &str)], body: Value) -> Answer {
    let mut req = app.client.post("/graphql").header("host", host).body_json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    answer(req.send().await).await
}

/// A GET with the header a browser-safe client sends (see `http::csrf`).
async fn get(app: &TestApp, host: &str, headers: &[(&str, &str)], params: &[(&str, &str)]) -> Answer {
    let query: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let mut req = app.client.get(format!("/graphql?{query}")).header("host", host).header("apollo-require-preflight", "true");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    answer(req.send().await).await
}

const TENANT_QUERY: &str = "query Agency { tenant { subdomain } }";

on_both_backends! {
    async fn a_hash_alone_misses_then_the_text_registers_it_and_the_hash_alone_runs_it_by_post_and_get(app) {
        app.create_tenant("acme").await;
        let h = host("acme");
        let hash = sha256_hex(TENANT_QUERY.as_bytes());
        // Apollo Client 4 accepts graphql-response+json: the miss is still 200.
        let accept = [("accept", "application/graphql-response+json, application/json;q=0.9")];
        let miss = post(&app, &h, &accept, json!({ "extensions": persisted(&hash) })).await;
        assert_eq!((miss.status, miss.code()), (200, Some("PERSISTED_QUERY_NOT_FOUND")), "{:?}", miss.body);
        assert_eq!(miss.body["errors"][0]["message"], "PersistedQueryNotFound");
        assert!(miss.body["errors"][0]["extensions"]["detail"].as_str().unwrap().contains("send the query text"));
        assert_eq!(miss.headers.get("cache-control").unwrap(), "no-store");
        assert!(miss.body.get("data").is_none());

        let registered = post(&app, &h, &accept, json!({ "query": TENANT_QUERY, "extensions": persisted(&hash) })).await;
        assert_eq!(registered.body["data"]["tenant"]["subdomain"], "acme", "{:?}", registered.body);

        let hit = post(&app, &h, &[], json!({ "extensions": persisted(&hash), "operationName": "Agency" })).await;
        assert_eq!((hit.status, &hit.body["data"]["tenant"]["subdomain"]), (200, &json!("acme")), "{:?}", hit.body);
        let extensions = persisted(&hash).to_string();
        let by_get = get(&app, &h, &[], &[("operationName", "Agency"), ("extensions", &extensions)]).await;
        assert_eq!(by_get.body["data"]["tenant"]["subdomain"], "acme", "{:?}", by_get.body);
        // A batch resolves each operation on its own.
        let batch = post(&app, &h, &[], json!([{ "extensions": persisted(&hash) }, { "extensions": persisted(&"0".repeat(64)) }])).await;
        assert_eq!(batch.body[0]["data"]["tenant"]["subdomain"], "acme", "{:?}", batch.body);
        assert_eq!(batch.body[1]["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND");
    }
}

on_both_backends! {
    async fn a_text_whose_hash_is_not_the_one_sent_is_refused_and_what_did_not_validate_is_never_registered(app) {
        app.create_tenant("acme").await;
        let h = host("acme");
        let wrong = sha256_hex(b"something else");
        let a = post(&app, &h, &[], json!({ "query": TENANT_QUERY, "extensions": persisted(&wrong) })).await;
        assert_eq!((a.status, a.code()), (400, Some("PERSISTED_QUERY_HASH_MISMATCH")), "{:?}", a.body);
        assert!(a.body["errors"][0]["message"].as_str().unwrap().contains(&sha256_hex(TENANT_QUERY.as_bytes())));
        let a = post(&app, &h, &[], json!({ "extensions": persisted(&wrong) })).await;
        assert_eq!(a.code(), Some("PERSISTED_QUERY_NOT_FOUND"));

        let invalid = "{ tenant { nope } }";
        let hash = sha256_hex(invalid.as_bytes());
        let a = post(&app, &h, &[], json!({ "query": invalid, "extensions": persisted(&hash) })).await;
        assert_eq!(a.code(), Some("GRAPHQL_VALIDATION_FAILED"), "{:?}", a.body);
        let a = post(&app, &h, &[], json!({ "extensions": persisted(&hash) })).await;
        assert_eq!(a.code(), Some("PERSISTED_QUERY_NOT_FOUND"), "an invalid document was registered");

        let a = post(&app, &h, &[], json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": hash } } })).await;
        assert_eq!(a.code(), Some("BAD_USER_INPUT"), "{:?}", a.body);
    }
}

on_both_backends! {
    async fn registrations_belong_to_one_agency(app) {
        app.create_tenant("acme").await;
        app.create_tenant("umbra").await;
        let hash = sha256_hex(TENANT_QUERY.as_bytes());
        post(&app, &host("acme"), &[], json!({ "query": TENANT_QUERY, "extensions": persisted(&hash) })).await;
        let a = post(&app, &host("umbra"), &[], json!({ "extensions": persisted(&hash) })).await;
        assert_eq!(a.code(), Some("PERSISTED_QUERY_NOT_FOUND"), "another agency's registration answered: {:?}", a.body);
        let a = post(&app, API_HOST, &[], json!({ "extensions": persisted(&hash) })).await;
        assert_eq!(a.code(), Some("PERSISTED_QUERY_NOT_FOUND"));
        let a = post(&app, &host("acme"), &[], json!({ "extensions": persisted(&hash) })).await;
        assert_eq!(a.body["data"]["tenant"]["subdomain"], "acme");
    }
}

on_both_backends! {
    async fn a_persisted_mutation_sent_by_get_is_refused_once_resolved(app) {
        let owner = app.sign_up("acme").await;
        let h = host("acme");
        let auth = format!("Bearer {}", owner.access);
        let mutation = "mutation { createClient(input: { name: \"By POST\" }) { id } }";
        let hash = sha256_hex(mutation.as_bytes());
        let extensions = persisted(&hash).to_string();
        // Unknown: the miss comes first, so the client can register it.
        let a = get(&app, &h, &[("authorization", &auth)], &[("extensions", &extensions)]).await;
        assert_eq!(a.code(), Some("PERSISTED_QUERY_NOT_FOUND"), "{:?}", a.body);
        let a = post(&app, &h, &[("authorization", &auth)], json!({ "query": mutation, "extensions": persisted(&hash) })).await;
        assert!(a.body["data"]["createClient"]["id"].is_string(), "{:?}", a.body);
        let a = get(&app, &h, &[("authorization", &auth)], &[("extensions", &extensions)]).await;
        assert_eq!((a.status, a.code()), (405, Some("METHOD_NOT_ALLOWED")), "{:?}", a.body);
        let listed = app.gql_as(&h, &owner.access, "{ clients { edges { node { name } } } }").await;
        assert_eq!(listed.body["data"]["clients"]["edges"].as_array().unwrap().len(), 1, "the GET ran the mutation");
    }
}

#[tokio::test]
async fn two_replicas_sharing_redis_see_each_others_registrations() {
    let a = TestApp::builder(Backend::Postgres).with_redis().build().await;
    let b = a.second_instance().await;
    a.create_tenant("acme").await;
    let hash = sha256_hex(TENANT_QUERY.as_bytes());
    let miss = post(&b, &host("acme"), &[], json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(miss.code(), Some("PERSISTED_QUERY_NOT_FOUND"));
    post(&a, &host("acme"), &[], json!({ "query": TENANT_QUERY, "extensions": persisted(&hash) })).await;
    let hit = post(&b, &host("acme"), &[], json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(hit.body["data"]["tenant"]["subdomain"], "acme", "{:?}", hit.body);
}

/// The schema a server runs, on a cache of its own, executed directly.
fn schema() -> (aggios::graphql::AppSchema, Arc<DocumentCache>) {
    let cache = Arc::new(DocumentCache::new(1 << 20, 64 << 10));
    (serving_schema(SchemaOptions { production: false, limits: aggios::config::LimitsSettings::default() }, cache.clone()), cache)
}

#[tokio::test]
async fn a_repeated_document_is_parsed_and_validated_once() {
    let (schema, cache) = schema();
    for _ in 0..3 {
        let resp = schema.execute("{ __typename }").await;
        assert_eq!(resp.data.to_string(), "{__typename: \"Query\"}");
    }
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.hits, stats.validations_reused), (1, 2, 2), "{stats:?}");
    // Each operation of a document is validated once.
    let two = "query A { __typename } query B { __typename }";
    for name in ["A", "B", "A"] {
        schema.execute(async_graphql::Request::new(two).operation_name(name)).await;
    }
    assert_eq!(cache.stats().validations_reused, 3, "{:?}", cache.stats());
    // What fails is refused every time, and never cached as valid.
    for _ in 0..2 {
        let resp = schema.execute("{ nope }").await;
        assert_eq!(resp.errors[0].extensions.as_ref().unwrap().get("code").unwrap().to_string(), "\"GRAPHQL_VALIDATION_FAILED\"");
    }
}

#[tokio::test]
async fn a_cached_document_is_costed_again_with_each_requests_variables() {
    let (schema, cache) = schema();
    let q = "query($n: Int!) { projects(first: $n) { edges { node { documents(first: $n) { downloadUrl { url } } } } } }";
    let code = |resp: &async_graphql::Response| resp.errors.first().and_then(|e| e.extensions.as_ref()?.get("code").map(|c| c.to_string()));
    let small = schema.execute(async_graphql::Request::new(q).variables(async_graphql::Variables::from_json(json!({ "n": 1 })))).await;
    // Past validation (it needs a request to run, which this one lacks).
    assert_ne!(code(&small).as_deref(), Some("\"QUERY_TOO_COMPLEX\""), "{:?}", small.errors);
    let big = schema.execute(async_graphql::Request::new(q).variables(async_graphql::Variables::from_json(json!({ "n": 100 })))).await;
    assert_eq!(code(&big).as_deref(), Some("\"QUERY_TOO_COMPLEX\""), "{:?}", big.errors);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.validations_reused), (1, 0), "{stats:?}");
    // Limits checked on the parsed document run on a hit too.
    let nested = "{ projects { edges { node { client { projects { client { projects { client { projects { client { projects { client { name } } } } } } } } } } } } }";
    for _ in 0..2 {
        let resp = schema.execute(nested).await;
        assert_eq!(code(&resp).as_deref(), Some("\"QUERY_TOO_DEEP\""), "{:?}", resp.errors);
    }
}

const MANIFEST_CLIENTS: &str = "query Clients { clients { edges { node { name } } } }";
const MANIFEST_TENANT: &str = "query Agency { tenant { subdomain } }";

fn apollo_manifest() -> Value {
    json!({ "format": "apollo-persisted-query-manifest", "version": 1, "operations": [
        { "id": sha256_hex(MANIFEST_CLIENTS.as_bytes()), "name": "Clients", "type": "query", "body": MANIFEST_CLIENTS },
        { "id": "agency-v1", "name": "Agency", "type": "query", "body": MANIFEST_TENANT },
    ] })
}

const UPLOAD: &str = "mutation($m: TrustedDocumentManifestJSON!) { uploadTrustedDocuments(manifest: $m) { id version format operationCount uploadedBy active } }";
const SET_MODE: &str = "mutation($m: TrustedDocumentsMode!) { setTrustedDocumentsMode(mode: $m) { mode activeManifest { version } } }";

on_both_backends! {
    async fn an_owner_uploads_manifests_that_are_versioned_listed_and_audited(app) {
        let owner = app.sign_up("acme").await;
        let h = host("acme");
        let a = app.gql_as_vars(&h, &owner.access, UPLOAD, json!({ "m": apollo_manifest() })).await;
        let m = &a.body["data"]["uploadTrustedDocuments"];
        assert_eq!((m["version"].as_i64(), m["format"].as_str(), m["operationCount"].as_i64()), (Some(1), Some("APOLLO"), Some(2)), "{:?}", a.body);
        assert_eq!(m["uploadedBy"], "owner@acme.com");
        // Relay's map, as the file's text.
        let relay = json!({ "relay-1": MANIFEST_TENANT }).to_string();
        let a = app.gql_as_vars(&h, &owner.access, UPLOAD, json!({ "m": relay })).await;
        assert_eq!(a.body["data"]["uploadTrustedDocuments"]["version"], 2, "{:?}", a.body);
        let listed = app.gql_as(&h, &owner.access, "{ trustedDocumentManifests { version format operationCount active } trustedDocumentSettings { mode activeManifest { version } } }").await;
        assert_eq!(
            listed.body["data"]["trustedDocumentManifests"],
            json!([{ "version": 2, "format": "RELAY", "operationCount": 1, "active": true }, { "version": 1, "format": "APOLLO", "operationCount": 2, "active": false }]),
            "{:?}", listed.body
        );
        assert_eq!(listed.body["data"]["trustedDocumentSettings"], json!({ "mode": "OFF", "activeManifest": { "version": 2 } }));
        let bad = app.gql_as_vars(&h, &owner.access, UPLOAD, json!({ "m": { "broken": "query {" } })).await;
        assert_eq!(bad.code(), Some("BAD_USER_INPUT"));
        assert!(bad.body["errors"][0]["message"].as_str().unwrap().contains("`broken` does not parse"), "{:?}", bad.body);
        let audit = app.gql_as(&h, &owner.access, "{ auditEvents(first: 20) { edges { node { action } } } }").await;
        let actions: Vec<&str> = audit.body["data"]["auditEvents"]["edges"].as_array().unwrap().iter().filter_map(|e| e["node"]["action"].as_str()).collect();
        assert_eq!(actions.iter().filter(|a| **a == "trusted_documents.upload").count(), 2, "{actions:?}");
        // A member may not.
        let member = app.add_user(&owner, "acme", "mia", "MEMBER").await;
        let a = app.gql_as_vars(&h, &member.access, UPLOAD, json!({ "m": apollo_manifest() })).await;
        assert_eq!(a.code(), Some("FORBIDDEN"));
    }
}

on_both_backends! {
    async fn with_require_an_api_key_runs_only_its_agencys_trusted_documents_by_id(app) {
        let owner = app.sign_up("acme").await;
        let h = host("acme");
        let (key, _) = app.api_key(&owner, "acme", "READ").await;
        app.gql_as_vars(&h, &owner.access, UPLOAD, json!({ "m": apollo_manifest() })).await;
        let k = [("x-api-key", key.as_str())];
        let clients_id = sha256_hex(MANIFEST_CLIENTS.as_bytes());

        // OFF: anything runs; the manifest serves every caller by id.
        let a = post(&app, &h, &k, json!({ "query": "{ tenant { name } }" })).await;
        assert!(a.body["data"]["tenant"]["name"].is_string(), "{:?}", a.body);
        let a = post(&app, &h, &[("authorization", &format!("Bearer {}", owner.access))], json!({ "doc_id": "agency-v1" })).await;
        assert_eq!(a.body["data"]["tenant"]["subdomain"], "acme", "{:?}", a.body);

        let a = app.gql_as_vars(&h, &owner.access, SET_MODE, json!({ "m": "REQUIRE" })).await;
        assert_eq!(a.body["data"]["setTrustedDocumentsMode"], json!({ "mode": "REQUIRE", "activeManifest": { "version": 1 } }), "{:?}", a.body);

        // Apollo's persisted query list: the manifest id as sha256Hash.
        let a = post(&app, &h, &k, json!({ "extensions": persisted(&clients_id) })).await;
        assert!(a.body["data"]["clients"]["edges"].is_array(), "{:?}", a.body);
        // Relay: doc_id, or documentId, by POST and GET.
        let a = post(&app, &h, &k, json!({ "documentId": "agency-v1" })).await;
        assert_eq!(a.body["data"]["tenant"]["subdomain"], "acme", "{:?}", a.body);
        let a = get(&app, &h, &k, &[("doc_id", "agency-v1")]).await;
        assert_eq!(a.body["data"]["tenant"]["subdomain"], "acme", "{:?}", a.body);

        for refused in [
            json!({ "query": "{ tenant { name } }" }),
            json!({ "query": MANIFEST_TENANT }),
            json!({ "doc_id": "not-in-the-list" }),
            json!({ "query": "{ tenant { name } }", "extensions": persisted(&clients_id) }),
        ] {
            let a = post(&app, &h, &k, refused.clone()).await;
            assert_eq!((a.status, a.code()), (403, Some("TRUSTED_DOCUMENT_REQUIRED")), "{refused}: {:?}", a.body);
        }
        let a = post(&app, &h, &k, json!({ "doc_id": "not-in-the-list" })).await;
        assert!(a.body["errors"][0]["message"].as_str().unwrap().contains("`not-in-the-list` is not in this agency's trusted documents (active manifest: version 1)"), "{:?}", a.body);
        // Users are not restricted.
        let a = app.gql_as(&h, &owner.access, "{ tenant { name } }").await;
        assert!(a.body["data"]["tenant"]["name"].is_string(), "{:?}", a.body);

        app.gql_as_vars(&h, &owner.access, SET_MODE, json!({ "m": "OFF" })).await;
        let a = post(&app, &h, &k, json!({ "query": "{ tenant { name } }" })).await;
        assert!(a.body["data"]["tenant"]["name"].is_string(), "{:?}", a.body);
    }
}

#[tokio::test]
async fn log_unknown_runs_an_api_keys_unknown_operation_and_logs_it() {
    crate::logging::logs();
    let app = TestApp::new(Backend::Sqlite).await;
    let owner = app.sign_up("acme").await;
    let h = host("acme");
    let (key, key_id) = app.api_key(&owner, "acme", "READ").await;
    app.gql_as_vars(&h, &owner.access, UPLOAD, json!({ "m": apollo_manifest() })).await;
    app.gql_as_vars(&h, &owner.access, SET_MODE, json!({ "m": "LOG_UNKNOWN" })).await;
    let k = [("x-api-key", key.as_str()), ("x-request-id", "log-unknown-test")];
    let a = post(&app, &h, &k, json!({ "query": "query Stray { tenant { name } }", "operationName": "Stray" })).await;
    assert!(a.body["data"]["tenant"]["name"].is_string(), "{:?}", a.body);
    let a = post(&app, &h, &k, json!({ "query": MANIFEST_TENANT })).await;
    assert!(a.body["data"]["tenant"]["subdomain"].is_string(), "{:?}", a.body);
    let lines = crate::logging::lines_with("not in its agency's trusted documents");
    let ours: Vec<_> = lines.iter().filter(|l| l.to_string().contains(&key_id)).collect();
    assert_eq!(ours.len(), 1, "{lines:?}");
    let line = ours[0].to_string();
    assert!(line.contains("log-unknown-test") && line.contains("Stray") && line.contains(&sha256_hex(b"query Stray { tenant { name } }")), "{line}");
}

on_both_backends! {
    async fn one_agencys_trusted_documents_and_mode_are_invisible_to_another(app) {
        let acme = app.sign_up("acme").await;
        let umbra = app.sign_up("umbra").await;
        app.gql_as_vars(&host("acme"), &acme.access, UPLOAD, json!({ "m": apollo_manifest() })).await;
        app.gql_as_vars(&host("acme"), &acme.access, SET_MODE, json!({ "m": "REQUIRE" })).await;
        let listed = app.gql_as(&host("umbra"), &umbra.access, "{ trustedDocumentManifests { id } trustedDocumentSettings { mode activeManifest { id } } }").await;
        assert_eq!(listed.body["data"], json!({ "trustedDocumentManifests": [], "trustedDocumentSettings": { "mode": "OFF", "activeManifest": null } }), "{:?}", listed.body);
        // Umbra's key runs freely, and acme's ids mean nothing there.
        let (key, _) = app.api_key(&umbra, "umbra", "READ").await;
        let k = [("x-api-key", key.as_str())];
        let a = post(&app, &host("umbra"), &k, json!({ "query": "{ tenant { subdomain } }" })).await;
        assert_eq!(a.body["data"]["tenant"]["subdomain"], "umbra", "{:?}", a.body);
        let a = post(&app, &host("umbra"), &k, json!({ "doc_id": "agency-v1" })).await;
        assert_eq!(a.code(), Some("PERSISTED_QUERY_NOT_FOUND"), "{:?}", a.body);
        // Acme's key on acme's host is held to acme's list.
        let (acme_key, _) = app.api_key(&acme, "acme", "READ").await;
        let a = post(&app, &host("acme"), &[("x-api-key", acme_key.as_str())], json!({ "query": "{ tenant { subdomain } }" })).await;
        assert_eq!(a.code(), Some("TRUSTED_DOCUMENT_REQUIRED"));
    }
}

#[tokio::test]
async fn a_mode_set_on_one_replica_holds_on_another_within_the_refresh() {
    let a = TestApp::builder(Backend::Postgres).with_settings(|s| s.persisted_queries.trusted_refresh_secs = 1).build().await;
    let b = a.second_instance().await;
    let owner = a.sign_up("acme").await;
    let (key, _) = a.api_key(&owner, "acme", "READ").await;
    let k = [("x-api-key", key.as_str())];
    let free = json!({ "query": "{ tenant { subdomain } }" });
    assert_eq!(post(&b, &host("acme"), &k, free.clone()).await.body["data"]["tenant"]["subdomain"], "acme");
    a.gql_as_vars(&host("acme"), &owner.access, SET_MODE, json!({ "m": "REQUIRE" })).await;
    assert_eq!(post(&a, &host("acme"), &k, free.clone()).await.code(), Some("TRUSTED_DOCUMENT_REQUIRED"), "not at once on its own replica");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(post(&b, &host("acme"), &k, free).await.code(), Some("TRUSTED_DOCUMENT_REQUIRED"));
}

#[tokio::test]
async fn the_platform_uploads_lists_and_sets_the_mode_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = crate::cli::aggios();
        cmd.current_dir(dir.path()).args(args);
        async move {
            let out = cmd.output().await.unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        }
    };
    run(&["tenant", "create", "--name", "Acme", "--subdomain", "acme"]).await;
    let file = dir.path().join("persisted-queries.json");
    std::fs::write(&file, json!({ "q1": MANIFEST_TENANT, "q2": MANIFEST_CLIENTS }).to_string()).unwrap();
    let file = file.to_str().unwrap();
    let up = run(&["tenant", "trusted-documents", "upload", "--subdomain", "acme", "--file", file]).await;
    assert_eq!((up["version"].as_i64(), up["format"].as_str(), up["operationCount"].as_i64()), (Some(1), Some("RELAY"), Some(2)), "{up}");
    let mode = run(&["tenant", "trusted-documents", "mode", "--subdomain", "acme", "--mode", "log-unknown"]).await;
    assert_eq!(mode["mode"], "LOG_UNKNOWN");
    let listed = run(&["tenant", "trusted-documents", "list", "--subdomain", "acme"]).await;
    assert_eq!((listed[0]["version"].as_i64(), listed[0]["uploadedBy"].as_str(), listed[0]["active"].as_bool()), (Some(1), Some("platform"), Some(true)), "{listed}");

    let mut cmd = crate::cli::aggios();
    let out = cmd.current_dir(dir.path()).args(["tenant", "trusted-documents", "mode", "--subdomain", "acme", "--mode", "strict"]).output().await.unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("off, log-unknown or require"));
}
