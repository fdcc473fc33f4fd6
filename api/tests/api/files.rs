//! Documents as files (issue 5), against a real SeaweedFS S3 server and the
//! local-files default: round trips, versions, links, isolation, hostile
//! names, limits, quotas, and consistency through storage and database
//! failures.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

pub(crate) const UPLOAD: &str = "mutation($input: UploadDocumentInput!) { uploadDocument(input: $input) { id name contentType sizeBytes checksumSha256 currentVersion } }";
const VERSION: &str = "mutation($id: ID!, $file: Upload!) { uploadDocumentVersion(documentId: $id, file: $file) { id currentVersion sizeBytes checksumSha256 } }";
pub(crate) const LINK: &str = "query($id: ID!, $v: Int) { document(id: $id) { downloadUrl(version: $v) { url expiresAt } } }";

/// A PDF's first bytes, so content sniffing recognises it.
pub(crate) fn pdf(len: usize) -> Vec<u8> {
    let mut b = b"%PDF-1.7\n".to_vec();
    b.extend((0..len.saturating_sub(b.len())).map(|i| (i % 251) as u8));
    b
}

pub(crate) fn noise(len: usize) -> Vec<u8> {
    // Bytes no sniffer recognises (a simple LCG, not starting with a magic number).
    let mut x: u32 = 0x2545_f491;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8 | 0x01
        })
        .collect()
}

pub(crate) struct World {
    pub(crate) app: TestApp,
    pub(crate) owner: Signed,
    pub(crate) host: String,
    pub(crate) project: String,
}

pub(crate) async fn world(app: TestApp, sub: &str) -> World {
    let owner = app.sign_up(sub).await;
    let host = host(sub);
    let client = app.gql_as(&host, &owner.access, "mutation { createClient(input: { name: \"Acme\" }) { id } }").await;
    let client = client.body["data"]["createClient"]["id"].as_str().expect("client").to_owned();
    let project = app
        .gql_as(&host, &owner.access, &format!("mutation {{ createProject(input: {{ clientId: \"{client}\", name: \"Site\" }}) {{ id }} }}"))
        .await;
    let project = project.body["data"]["createProject"]["id"].as_str().expect("project").to_owned();
    World { app, owner, host, project }
}

impl World {
    pub(crate) async fn upload(&self, name: Option<&str>, filename: &str, content_type: &str, bytes: &[u8]) -> Answer {
        let input = json!({ "projectId": self.project, "name": name, "file": null });
        self.app
            .gql_upload(&self.host, &self.owner.access, UPLOAD, json!({ "input": input }), &[FilePart {
                path: "variables.input.file",
                filename,
                content_type,
                bytes,
            }])
            .await
    }

    pub(crate) async fn upload_ok(&self, content_type: &str, bytes: &[u8]) -> Value {
        let a = self.upload(Some("file.bin"), "file.bin", content_type, bytes).await;
        assert!(a.body["errors"].is_null(), "{:?}", a.body);
        a.body["data"]["uploadDocument"].clone()
    }

    pub(crate) async fn link(&self, doc: &str, version: Option<i32>) -> Answer {
        self.app.gql_as_vars(&self.host, &self.owner.access, LINK, json!({ "id": doc, "v": version })).await
    }

    pub(crate) async fn download(&self, doc: &str, version: Option<i32>) -> Vec<u8> {
        let a = self.link(doc, version).await;
        let url = a.body["data"]["document"]["downloadUrl"]["url"].as_str().unwrap_or_else(|| panic!("{:?}", a.body)).to_owned();
        let (status, bytes) = self.app.fetch(&self.host, &url).await;
        assert_eq!(status, 200, "downloading {url}");
        bytes
    }

    pub(crate) fn tenant(&self) -> uuid::Uuid {
        self.owner.tenant_id.parse().unwrap()
    }

    /// Every object key under this tenant's prefix.
    pub(crate) async fn stored_keys(&self) -> Vec<String> {
        let prefix = aggios::objects::tenant_prefix(self.tenant());
        self.app.state.objects.list(&prefix).await.expect("listing").into_iter().map(|o| o.key).collect()
    }

    pub(crate) async fn document_count(&self) -> usize {
        let a = self.app.gql_as(&self.host, &self.owner.access, "{ documents(first: 100) { edges { node { id } } } }").await;
        a.body["data"]["documents"]["edges"].as_array().map_or(0, Vec::len)
    }

    /// PUTs a direct upload to its granted URL: presigned on S3, a path on
    /// this app on local storage. Returns the status.
    pub(crate) async fn put(&self, url: &str, content_type: &str, bytes: &[u8]) -> u16 {
        if url.starts_with("http") {
            let sent = reqwest::Client::new()
                .put(url)
                .header("content-type", content_type)
                .header("content-length", bytes.len())
                .body(bytes.to_vec())
                .send()
                .await;
            sent.unwrap().status().as_u16()
        } else {
            let resp = self
                .app
                .client
                .put(url)
                .header("host", &self.host)
                .header("content-type", content_type)
                .header("content-length", bytes.len())
                .body(bytes.to_vec())
                .send()
                .await;
            resp.0.status().as_u16()
        }
    }

    pub(crate) async fn sweep(&self) -> aggios::files::sweep::Swept {
        aggios::files::sweep::sweep(&self.app.state.files, Duration::ZERO).await.expect("sweep")
    }
}

async fn round_trip(app: TestApp, sub: &str) {
    let w = world(app, sub).await;
    let part = aggios::objects::PART_BYTES;
    for (content_type, bytes) in
        [("application/octet-stream", Vec::new()), ("application/pdf", pdf(3000)), ("application/octet-stream", noise(2 * part + 12_345))]
    {
        let doc = w.upload_ok(content_type, &bytes).await;
        assert_eq!(doc["sizeBytes"], bytes.len() as i64);
        assert_eq!(doc["checksumSha256"], sha256_hex(&bytes));
        assert_eq!(doc["contentType"], content_type);
        let back = w.download(doc["id"].as_str().unwrap(), None).await;
        assert_eq!(back.len(), bytes.len());
        assert_eq!(sha256_hex(&back), sha256_hex(&bytes), "the bytes come back unchanged");
    }
    let keys = w.stored_keys().await;
    assert_eq!(keys.len(), 3);
    let usage = w.app.gql_as(&w.host, &w.owner.access, "{ storageUsage { quotaBytes usedBytes } }").await;
    assert_eq!(usage.body["data"]["storageUsage"]["usedBytes"], (3000 + 2 * part + 12_345) as i64);
}

#[tokio::test]
async fn files_round_trip_on_local_storage() {
    round_trip(TestApp::new(Backend::Sqlite).await, "rt-local").await;
}

#[tokio::test]
async fn files_round_trip_on_s3() {
    round_trip(TestApp::builder(Backend::Postgres).with_s3().build().await, "rt-s3").await;
}

async fn versions(app: TestApp) {
    let w = world(app, "versions").await;
    let v1 = pdf(1000);
    let doc = w.upload_ok("application/pdf", &v1).await;
    let id = doc["id"].as_str().unwrap();
    let v2 = noise(5000);
    let a = w
        .app
        .gql_upload(&w.host, &w.owner.access, VERSION, json!({ "id": id, "file": null }), &[FilePart {
            path: "variables.file",
            filename: "v2.bin",
            content_type: "application/octet-stream",
            bytes: &v2,
        }])
        .await;
    assert_eq!(a.body["data"]["uploadDocumentVersion"]["currentVersion"], 2, "{:?}", a.body);
    assert_eq!(a.body["data"]["uploadDocumentVersion"]["checksumSha256"], sha256_hex(&v2));
    let listed = w.app.gql_as(&w.host, &w.owner.access, &format!("{{ document(id: \"{id}\") {{ versions {{ version sizeBytes checksumSha256 }} }} }}")).await;
    let vs = listed.body["data"]["document"]["versions"].as_array().expect("versions").clone();
    assert_eq!(vs.len(), 2);
    assert_eq!(vs[0]["checksumSha256"], sha256_hex(&v1));
    assert_eq!(w.download(id, Some(1)).await, v1, "any version can be downloaded");
    assert_eq!(w.download(id, None).await, v2, "the current one by default");
    assert_eq!(w.link(id, Some(3)).await.code(), Some("NOT_FOUND"));

    // Deleting removes every version; the sweeper then removes the bytes.
    let del = w.app.gql_as(&w.host, &w.owner.access, &format!("mutation {{ deleteDocument(id: \"{id}\") }}")).await;
    assert_eq!(del.body["data"]["deleteDocument"], true, "{:?}", del.body);
    assert_eq!(w.stored_keys().await.len(), 2, "bytes stay until swept");
    assert_eq!(w.sweep().await.removed, 2);
    assert!(w.stored_keys().await.is_empty());
    let usage = w.app.gql_as(&w.host, &w.owner.access, "{ storageUsage { usedBytes } }").await;
    assert_eq!(usage.body["data"]["storageUsage"]["usedBytes"], 0);

    let audit = w.app.gql_as(&w.host, &w.owner.access, "{ auditEvents(first: 100) { edges { node { action } } } }").await;
    let actions: Vec<&str> = audit.body["data"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["node"]["action"].as_str())
        .collect();
    for action in ["document.upload", "document.version", "document.download_url", "document.delete"] {
        assert!(actions.contains(&action), "{action} audited: {actions:?}");
    }
}

on_both_backends!(
    async fn versions_download_delete_and_sweep_on_local(app) {
        versions(app).await;
    }
);

#[tokio::test]
async fn versions_download_delete_and_sweep_on_s3() {
    versions(TestApp::builder(Backend::Postgres).with_s3().build().await).await;
}

#[tokio::test]
async fn links_are_bound_to_tenant_signature_and_expiry() {
    let mut app = TestApp::builder(Backend::Sqlite);
    app = app.with_storage_url_ttl(1);
    let a = world(app.build().await, "link-a").await;
    let doc = a.upload_ok("application/pdf", &pdf(500)).await;
    let id = doc["id"].as_str().unwrap();
    let link = a.link(id, None).await;
    let url = link.body["data"]["document"]["downloadUrl"]["url"].as_str().unwrap().to_owned();
    assert_eq!(a.app.fetch(&a.host, &url).await.0, 200);

    // Another agency of the same deployment cannot see the document, nor use the link.
    let b = a.app.sign_up("link-b").await;
    let other = a.app.gql_as_vars(&host("link-b"), &b.access, LINK, json!({ "id": id, "v": null })).await;
    assert_eq!(other.code(), Some("NOT_FOUND"), "{:?}", other.body);
    assert_eq!(a.app.fetch(&host("link-b"), &url).await.0, 403, "a link works only on its own agency's host");

    // An altered signature or payload is refused.
    let token = url.trim_start_matches("/files/");
    let mut flipped = token.to_owned().into_bytes();
    let last = flipped.len() - 3;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert_eq!(a.app.fetch(&a.host, &format!("/files/{flipped}")).await.0, 403);
    assert_eq!(a.app.fetch(&a.host, "/files/v4.public.garbage").await.0, 403);

    // An expired link is refused.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(a.app.fetch(&a.host, &url).await.0, 403, "expired");
}

#[tokio::test]
async fn hostile_names_never_reach_a_key_or_path() {
    let app = TestApp::new(Backend::Sqlite).await;
    let objects_dir = app.settings.local_objects_dir();
    let w = world(app, "names").await;
    for name in ["../../other-tenant/x", "/etc/passwd", "..\\..\\windows", "a/../../b"] {
        let a = w.upload(None, name, "application/pdf", &pdf(100)).await;
        assert_eq!(a.body["data"]["uploadDocument"]["name"], name, "the name is data: {:?}", a.body);
    }
    let nul = w.upload(Some("bad\u{0}name"), "x", "application/pdf", &pdf(100)).await;
    assert_eq!(nul.code(), Some("BAD_USER_INPUT"));
    let long = w.upload(Some(&"n".repeat(300)), "x", "application/pdf", &pdf(100)).await;
    assert_eq!(long.code(), Some("BAD_USER_INPUT"));

    // Everything on disk is `{tenant}/documents/{version id}`.
    let mut files = Vec::new();
    let mut stack = vec![objects_dir.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() { stack.push(p) } else { files.push(p) }
        }
    }
    assert_eq!(files.len(), 4);
    for f in files {
        let rel = f.strip_prefix(&objects_dir).unwrap().to_string_lossy().to_string();
        let parts: Vec<&str> = rel.split('/').collect();
        assert_eq!(parts.len(), 3, "{rel}");
        assert_eq!(parts[0], w.tenant().to_string());
        assert_eq!(parts[1], "documents");
        assert!(parts[2].parse::<uuid::Uuid>().is_ok(), "{rel}");
    }
}

#[tokio::test]
async fn oversize_too_many_and_over_quota_uploads_store_nothing() {
    let app = TestApp::builder(Backend::Postgres).with_s3().with_max_file_bytes(10_000).build().await;
    let w = world(app, "limits").await;
    let big = w.upload(Some("big"), "big.bin", "application/octet-stream", &noise(10_001)).await;
    assert_eq!(big.code(), Some("PAYLOAD_TOO_LARGE"), "{:?}", big.body);

    let files: Vec<Vec<u8>> = (0..11).map(|_| pdf(10)).collect();
    let parts: Vec<String> = (0..11).map(|i| format!("variables.files.{i}")).collect();
    let fp: Vec<FilePart<'_>> = files
        .iter()
        .zip(&parts)
        .map(|(b, p)| FilePart { path: p, filename: "f.pdf", content_type: "application/pdf", bytes: b })
        .collect();
    let many = w
        .app
        .gql_upload(&w.host, &w.owner.access, "mutation($files: [Upload!]!) { __typename }", json!({ "files": vec![Value::Null; 11] }), &fp)
        .await;
    assert_eq!(many.code(), Some("PAYLOAD_TOO_LARGE"), "{:?}", many.body);
    assert_eq!(many.status, 413);

    aggios::store::tenants::set_quota(w.app.state.db.platform(), w.tenant(), 5_000).await.unwrap();
    let over = w.upload(Some("over"), "over.bin", "application/octet-stream", &noise(6_000)).await;
    assert_eq!(over.code(), Some("QUOTA_EXCEEDED"), "{:?}", over.body);
    let fits = w.upload_ok("application/octet-stream", &noise(4_000)).await;
    assert_eq!(fits["sizeBytes"], 4_000);
    let past = w.upload(Some("past"), "past.bin", "application/octet-stream", &noise(1_001)).await;
    assert_eq!(past.code(), Some("QUOTA_EXCEEDED"), "the quota counts what is stored");

    let mismatch = w.upload(Some("fake"), "fake.png", "image/png", &pdf(100)).await;
    assert_eq!(mismatch.code(), Some("BAD_USER_INPUT"), "declared PNG, bytes PDF: {:?}", mismatch.body);

    assert_eq!(w.document_count().await, 1);
    assert_eq!(w.stored_keys().await.len(), 1, "only the upload that fitted left bytes");
}

#[tokio::test]
async fn storage_failing_mid_upload_leaves_no_record_and_the_sweeper_no_bytes() {
    let s3 = s3();
    // The relay cuts storage after 10 MiB: the middle of a three-part upload.
    let relay = Relay::to(Some(10 * 1024 * 1024), &s3).await;
    let app = TestApp::builder(Backend::Postgres)
        .with_s3_endpoint(S3Endpoint { endpoint: format!("http://127.0.0.1:{}", relay.port), ..s3.clone() })
        .build()
        .await;
    let w = world(app, "s3-cut").await;
    let bytes = noise(3 * aggios::objects::PART_BYTES);
    let a = w.upload(Some("cut"), "cut.bin", "application/octet-stream", &bytes).await;
    assert_eq!(a.code(), Some("SERVICE_UNAVAILABLE"), "{:?}", a.body);
    assert!(a.body["errors"][0]["message"].as_str().unwrap().contains("file storage"));
    relay.stop().await;

    // The same deployment, storage back: no record, and nothing left once swept.
    let mut settings = w.app.settings.clone();
    settings.storage.s3_endpoint = Some(s3.endpoint.clone());
    let healthy = aggios::state::AppState::connect(settings).await.expect("app");
    aggios::files::sweep::sweep(&healthy.files, Duration::ZERO).await.expect("sweep");
    let left = healthy.objects.list(&aggios::objects::tenant_prefix(w.tenant())).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    let docs = w.app.gql_as(&w.host, &w.owner.access, "{ documents(first: 10) { edges { node { id } } } }").await;
    assert_eq!(docs.body["data"]["documents"]["edges"].as_array().unwrap().len(), 0);
}

async fn database_failure_after_bytes(app: TestApp) {
    let w = world(app, "db-fail").await;
    // The upload stores its bytes, then a later field of the same operation
    // fails: the request's transaction rolls back, records and all.
    let q = "mutation($input: UploadDocumentInput!) { a: uploadDocument(input: $input) { id } b: deleteClient(id: \"00000000-0000-7000-8000-000000000000\") }";
    let input = json!({ "projectId": w.project, "name": "lost", "file": null });
    let a = w
        .app
        .gql_upload(&w.host, &w.owner.access, q, json!({ "input": input }), &[FilePart {
            path: "variables.input.file",
            filename: "lost.pdf",
            content_type: "application/pdf",
            bytes: &pdf(2000),
        }])
        .await;
    assert_eq!(a.code(), Some("NOT_FOUND"), "{:?}", a.body);
    assert_eq!(w.document_count().await, 0, "no record without a commit");
    assert!(w.stored_keys().await.is_empty(), "the bytes of a rolled-back upload are removed when the request ends");
    assert_eq!(w.sweep().await.removed, 0, "nothing is left for the sweeper");
    let usage = w.app.gql_as(&w.host, &w.owner.access, "{ storageUsage { usedBytes } }").await;
    assert_eq!(usage.body["data"]["storageUsage"]["usedBytes"], 0, "the quota charge rolled back too");
}

on_both_backends!(
    async fn database_failure_after_the_bytes_leaves_neither_record_nor_bytes_local(app) {
        database_failure_after_bytes(app).await;
    }
);

#[tokio::test]
async fn database_failure_after_the_bytes_leaves_neither_record_nor_bytes_s3() {
    database_failure_after_bytes(TestApp::builder(Backend::Postgres).with_s3().build().await).await;
}

#[tokio::test]
async fn the_sweeper_spares_young_objects() {
    let w = world(TestApp::new(Backend::Sqlite).await, "young").await;
    let key = aggios::objects::version_key(w.tenant(), uuid::Uuid::now_v7());
    w.app.state.objects.put_stream(&key, &b"in flight"[..], "text/plain").await.unwrap();
    let spared = aggios::files::sweep::sweep(&w.app.state.files, Duration::from_secs(3600)).await.unwrap();
    assert_eq!(spared.removed, 0, "an upload may still be committing");
    assert_eq!(w.sweep().await.removed, 1);
}

async fn direct_upload(app: TestApp, sub: &str) {
    let w = world(app, sub).await;
    let bytes = pdf(4321);
    let req = format!(
        "mutation {{ requestDocumentUpload(input: {{ projectId: \"{}\", name: \"direct.pdf\", contentType: \"application/pdf\", sizeBytes: {} }}) {{ url method headers {{ name value }} uploadToken }} }}",
        w.project,
        bytes.len()
    );
    let granted = w.app.gql_as(&w.host, &w.owner.access, &req).await;
    let g = granted.body["data"]["requestDocumentUpload"].clone();
    let url = g["url"].as_str().unwrap_or_else(|| panic!("{:?}", granted.body)).to_owned();
    let token = g["uploadToken"].as_str().unwrap().to_owned();

    let confirm = format!("mutation {{ confirmDocumentUpload(uploadToken: \"{token}\") {{ id sizeBytes checksumSha256 }} }}");
    let early = w.app.gql_as(&w.host, &w.owner.access, &confirm).await;
    assert_eq!(early.code(), Some("BAD_USER_INPUT"), "nothing uploaded yet: {:?}", early.body);

    let status = w.put(&url, "application/pdf", &bytes).await;
    assert!((200..300).contains(&status), "PUT answered {status}");
    let done = w.app.gql_as(&w.host, &w.owner.access, &confirm).await;
    let doc = &done.body["data"]["confirmDocumentUpload"];
    assert_eq!(doc["checksumSha256"], sha256_hex(&bytes), "{:?}", done.body);
    assert_eq!(w.download(doc["id"].as_str().unwrap(), None).await, bytes);
    let again = w.app.gql_as(&w.host, &w.owner.access, &confirm).await;
    assert_eq!(again.code(), Some("CONFLICT"), "a grant is confirmed once");

    let b = w.app.sign_up(&format!("{sub}-b")).await;
    let stolen = w.app.gql_as(&host(&format!("{sub}-b")), &b.access, &confirm).await;
    assert_eq!(stolen.code(), Some("BAD_USER_INPUT"), "another agency cannot confirm it: {:?}", stolen.body);
}

#[tokio::test]
async fn direct_upload_through_a_signed_link_on_local_storage() {
    direct_upload(TestApp::new(Backend::Sqlite).await, "direct-local").await;
}

#[tokio::test]
async fn direct_upload_through_a_presigned_put_on_s3() {
    direct_upload(TestApp::builder(Backend::Postgres).with_s3().build().await, "direct-s3").await;
}

#[tokio::test]
async fn only_writers_get_to_stream_a_file() {
    let w = world(TestApp::new(Backend::Sqlite).await, "writers").await;
    let (read_key, _) = w.app.api_key(&w.owner, "writers", "READ").await;
    let input = json!({ "input": { "projectId": w.project, "file": null } });
    let file = [FilePart { path: "variables.input.file", filename: "a.pdf", content_type: "application/pdf", bytes: &pdf(100) }];
    let a = w.app.gql_upload(&w.host, &read_key, UPLOAD, input.clone(), &file).await;
    assert_eq!((a.status, a.code()), (403, Some("FORBIDDEN")), "{:?}", a.body);
    let anon = w.app.gql_upload(&w.host, "", UPLOAD, input, &file).await;
    assert_eq!(anon.code(), Some("UNAUTHENTICATED"), "{:?}", anon.body);
    assert!(w.stored_keys().await.is_empty(), "nothing reached storage");
}

#[tokio::test]
async fn a_request_without_files_is_held_to_a_small_limit() {
    let app = TestApp::new(Backend::Sqlite).await;
    let big = format!("{{\"query\":\"{{ __typename }}\",\"variables\":{{\"pad\":\"{}\"}}}}", "x".repeat(2 * 1024 * 1024));
    let resp = app.client.post("/graphql").header("host", API_HOST).content_type("application/json").body(big).send().await;
    let a = answer(resp).await;
    assert_eq!((a.status, a.code()), (413, Some("PAYLOAD_TOO_LARGE")), "{:?}", a.body);
}

#[tokio::test]
async fn versions_of_a_list_cost_one_batch() {
    let w = world(TestApp::new(Backend::Sqlite).await, "batched").await;
    let q = "{ documents(first: 20) { edges { node { versions { version sizeBytes } } } } }";
    let statements = |a: &Answer| a.headers.get("x-aggios-sql-statements").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    w.upload_ok("application/pdf", &pdf(10)).await;
    let one = w.app.gql_as(&w.host, &w.owner.access, q).await;
    for _ in 0..4 {
        w.upload_ok("application/pdf", &pdf(10)).await;
    }
    let five = w.app.gql_as(&w.host, &w.owner.access, q).await;
    assert_eq!(five.body["data"]["documents"]["edges"].as_array().unwrap().len(), 5);
    assert!(statements(&one).is_some());
    assert_eq!(statements(&one), statements(&five), "one batch of versions whatever the page");
}
