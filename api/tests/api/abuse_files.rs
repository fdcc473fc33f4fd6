//! Findings of the abuse trial on files, each made impossible and proven
//! against PostgreSQL with S3 (SeaweedFS) and the SQLite and local-files
//! default: spent upload tokens (finding 10), the quota (11), download links
//! (13), names and content types (16), and what API keys and vanished owners
//! get (17).

use chrono::Utc;
use futures::StreamExt as _;
use serde_json::{Value, json};

use crate::{
    files::{World, noise, pdf, world},
    helpers::*,
};

const GRANT: &str =
    "mutation($i: RequestDocumentUploadInput!) { requestDocumentUpload(input: $i) { url headers { name value } uploadToken } }";
const CONFIRM: &str = "mutation($t: String!) { confirmDocumentUpload(uploadToken: $t) { id sizeBytes checksumSha256 } }";
const USAGE: &str = "{ storageUsage { quotaBytes usedBytes } }";
const MIB: usize = 1024 * 1024;

impl World {
    /// A direct-upload grant for a new document of the project: the answer.
    async fn grant(&self, name: &str, content_type: &str, size: usize) -> Answer {
        let input = json!({ "projectId": self.project, "name": name, "contentType": content_type, "sizeBytes": size });
        self.app.gql_as_vars(&self.host, &self.owner.access, GRANT, json!({ "i": input })).await
    }

    /// A grant that must be given: (url, upload token).
    async fn granted(&self, name: &str, content_type: &str, size: usize) -> (String, String) {
        let a = self.grant(name, content_type, size).await;
        let g = &a.body["data"]["requestDocumentUpload"];
        let url = g["url"].as_str().unwrap_or_else(|| panic!("{:?}", a.body)).to_owned();
        (url, g["uploadToken"].as_str().unwrap().to_owned())
    }

    async fn confirm(&self, token: &str) -> Answer {
        self.app.gql_as_vars(&self.host, &self.owner.access, CONFIRM, json!({ "t": token })).await
    }

    async fn used_bytes(&self) -> i64 {
        let a = self.app.gql_as(&self.host, &self.owner.access, USAGE).await;
        a.body["data"]["storageUsage"]["usedBytes"].as_i64().unwrap_or_else(|| panic!("{:?}", a.body))
    }

    async fn set_quota(&self, bytes: usize) {
        aggios::store::tenants::set_quota(self.app.state.db.platform(), self.tenant(), bytes as i64).await.unwrap();
    }

    /// The id of a document's current version, as stored.
    async fn version_id(&self, document: &str) -> uuid::Uuid {
        let db = self.app.state.db.scoped(self.tenant());
        let v = aggios::files::version_of(&db, document.parse().unwrap(), None).await.unwrap();
        db.finish(true).await.unwrap();
        v.id
    }

    /// The uploads pass, as if it ran an hour from now: every grant given
    /// in the test has expired by then.
    async fn sweep_expired_grants(&self) -> aggios::files::sweep::Swept {
        aggios::files::sweep::sweep_uploads(&self.app.state.files, Utc::now() + chrono::Duration::hours(1)).await.expect("uploads sweep")
    }
}

/// HTML of exactly `len` bytes.
fn html(len: usize) -> Vec<u8> {
    let mut b = b"<!DOCTYPE html><html><body><script>alert(1)</script>".to_vec();
    b.resize(len, b' ');
    b
}

// Finding 10: a second PUT with the same token replaced a confirmed PDF.

on_local_and_s3!(
    async fn an_upload_token_is_spent_once_its_upload_is_confirmed(app) {
        let w = world(app, "spent").await;
        let original = pdf(4096);
        let (url, token) = w.granted("contract.pdf", "application/pdf", original.len()).await;
        assert!((200..300).contains(&w.put(&url, "application/pdf", &original).await));
        let confirmed = w.confirm(&token).await;
        let doc = confirmed.body["data"]["confirmDocumentUpload"].clone();
        assert_eq!(doc["checksumSha256"], sha256_hex(&original), "{:?}", confirmed.body);

        let version = w.version_id(doc["id"].as_str().unwrap()).await;
        let (version_key, staging_key) =
            (aggios::objects::version_key(w.tenant(), version), aggios::objects::staging_key(w.tenant(), version));

        // The same token again, with other bytes of the same size.
        let status = w.put(&url, "application/pdf", &html(original.len())).await;
        if url.starts_with("http") {
            // A presigned PUT cannot be taken back; it only reaches the staging key.
            assert!((200..300).contains(&status), "S3 answered {status}");
            assert!(w.stored_keys().await.contains(&staging_key));
        } else {
            assert_eq!(status, 409, "the API refuses bytes for a confirmed upload");
        }
        let again = w.confirm(&token).await;
        assert_eq!(again.code(), Some("CONFLICT"), "{:?}", again.body);

        let back = w.download(doc["id"].as_str().unwrap(), None).await;
        assert_eq!(sha256_hex(&back), doc["checksumSha256"].as_str().unwrap(), "the confirmed bytes never change");
        assert_eq!(back, original);

        // Whatever the late PUT left is removed once the grant has expired.
        w.sweep_expired_grants().await;
        assert_eq!(w.stored_keys().await, vec![version_key], "only the confirmed version's bytes remain");
    }
);

// Finding 11: unused files were stored and grants were checked one by one.

on_local_and_s3!(
    async fn files_an_operation_does_not_use_are_not_kept_and_grants_reserve_quota(app) {
        let w = world(app, "quota").await;
        w.set_quota(MIB).await;
        // A file mapped to a variable the operation never uses.
        let unused = |bytes: &[u8]| {
            let files = [FilePart { path: "variables.junk", filename: "junk.bin", content_type: "application/octet-stream", bytes }];
            let op = "mutation { createClient(input: { name: \"Carrier\" }) { id } }";
            let (body, content_type) = multipart_body(op, &json!({ "junk": null }), &files);
            (body, content_type)
        };
        // With its length declared (as curl and browsers do), or streamed
        // without one (chunked).
        let send = async |(body, content_type): (Vec<u8>, String), declared: bool| {
            let mut req = w
                .app
                .client
                .post("/graphql")
                .header("host", &w.host)
                .header("authorization", format!("Bearer {}", w.owner.access))
                .header("apollo-require-preflight", "true")
                .header("content-type", content_type);
            if declared {
                req = req.header("content-length", body.len()).body(body);
            } else {
                let chunks = body.chunks(64 * 1024).map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c))).collect::<Vec<_>>();
                req = req.body(poem::Body::from_bytes_stream(futures::stream::iter(chunks)));
            }
            answer(req.send().await).await
        };

        // More than the quota: refused, from the declared length or while
        // streaming, and nothing is stored.
        for declared in [true, false] {
            let big = send(unused(&noise(3 * MIB)), declared).await;
            assert_eq!((big.status, big.code()), (507, Some("QUOTA_EXCEEDED")), "declared: {declared}, {:?}", big.body);
            assert!(w.stored_keys().await.is_empty(), "declared: {declared}");
        }

        // Within the quota: the operation runs, the file is neither kept nor counted.
        let small = send(unused(&noise(MIB / 2)), true).await;
        assert!(small.body["data"]["createClient"]["id"].is_string(), "{:?}", small.body);
        assert_eq!(w.used_bytes().await, 0);
        assert!(w.stored_keys().await.is_empty(), "no object for a file nothing used");

        // Grants reserve their size: two of 0.6 MiB do not fit in 1 MiB.
        let size = MIB * 6 / 10;
        let (_, token) = w.granted("first.bin", "application/octet-stream", size).await;
        assert_eq!(w.used_bytes().await, size as i64, "a grant holds its size until confirmed or expired");
        let second = w.grant("second.bin", "application/octet-stream", size).await;
        assert_eq!(second.code(), Some("QUOTA_EXCEEDED"), "{:?}", second.body);
        // Nor does a multipart upload fit past what the grant holds.
        let squeezed = w.upload(Some("squeezed"), "s.bin", "application/octet-stream", &noise(size)).await;
        assert_eq!(squeezed.code(), Some("QUOTA_EXCEEDED"), "{:?}", squeezed.body);

        // Unconfirmed, the grant expires and gives its bytes back.
        assert_eq!(w.sweep_expired_grants().await.grants_expired, 1);
        assert_eq!(w.used_bytes().await, 0);
        assert_eq!(w.confirm(&token).await.code(), Some("BAD_USER_INPUT"), "an ended grant confirms nothing");
        let third = w.grant("third.bin", "application/octet-stream", size).await;
        assert!(third.body["errors"].is_null(), "{:?}", third.body);
    }
);

on_local_and_s3!(
    async fn a_client_gone_mid_upload_leaves_its_files_to_the_next_uploads_pass(app) {
        let w = world(app, "gone").await;
        let (first, second) = (noise(1000), noise(1000));
        let files = [
            FilePart { path: "variables.a", filename: "a.bin", content_type: "application/octet-stream", bytes: &first },
            FilePart { path: "variables.b", filename: "b.bin", content_type: "application/octet-stream", bytes: &second },
        ];
        let (body, content_type) = multipart_body("mutation { __typename }", &json!({ "a": null, "b": null }), &files);
        // The body stops in the middle of the second file, and the client
        // gives up: the request is dropped with one file stored.
        let cut = body.len() - 600;
        let stalled = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(&body[..cut]))])
            .chain(futures::stream::pending());
        let req = w
            .app
            .client
            .post("/graphql")
            .header("host", &w.host)
            .header("authorization", format!("Bearer {}", w.owner.access))
            .header("apollo-require-preflight", "true")
                .header("content-type", content_type)
            .body(poem::Body::from_bytes_stream(stalled))
            .send();
        assert!(tokio::time::timeout(std::time::Duration::from_secs(2), req).await.is_err(), "the request hangs");
        assert_eq!(w.stored_keys().await.len(), 1, "the first file was stored");
        assert_eq!(w.sweep_expired_grants().await.removed, 1);
        assert!(w.stored_keys().await.is_empty());
    }
);

#[tokio::test]
async fn a_confirmed_grant_counts_once_through_its_version() {
    let w = world(TestApp::new(Backend::Sqlite).await, "counted-once").await;
    let bytes = pdf(1000);
    let (url, token) = w.granted("once.pdf", "application/pdf", bytes.len()).await;
    w.put(&url, "application/pdf", &bytes).await;
    assert!(w.confirm(&token).await.body["errors"].is_null());
    assert_eq!(w.used_bytes().await, 1000);
    w.sweep_expired_grants().await;
    assert_eq!(w.used_bytes().await, 1000, "an expired, confirmed reservation gives nothing back");
    // A recount (deleting another document) agrees.
    let other = w.upload_ok("application/pdf", &pdf(10)).await;
    let del = format!("mutation {{ deleteDocument(id: \"{}\") }}", other["id"].as_str().unwrap());
    w.app.gql_as(&w.host, &w.owner.access, &del).await;
    assert_eq!(w.used_bytes().await, 1000);
}

// Finding 13: one query signed 30,000 links and wrote 30,000 audit rows.

on_local_and_s3!(
    async fn download_links_cost_complexity_and_are_audited_once_per_request(app) {
        let w = world(app, "links").await;
        let (read_key, _) = w.app.api_key(&w.owner, "links", "READ").await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(w.upload_ok("application/pdf", &pdf(100)).await["id"].as_str().unwrap().to_owned());
        }
        let link_events = async || {
            let q = "{ auditEvents(first: 100, filter: { action: \"document.download_url\" }) { edges { node { targetId changes } } } }";
            let a = w.app.gql_as(&w.host, &w.owner.access, q).await;
            a.body["data"]["auditEvents"]["edges"].as_array().unwrap_or_else(|| panic!("{:?}", a.body)).clone()
        };

        // As many links as aliases may name: 100 documents with 15 each.
        let aliases: String = (0..15).map(|i| format!("l{i}: downloadUrl {{ url }} ")).collect();
        let flood = w.app.gql_as(&w.host, &read_key, &format!("{{ documents(first: 100) {{ edges {{ node {{ {aliases} }} }} }} }}")).await;
        assert_eq!(flood.code(), Some("QUERY_TOO_COMPLEX"), "{:?}", flood.body);
        let message = flood.body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("downloadUrl") && message.contains("smaller pages"), "{message}");
        assert!(flood.body["data"].is_null(), "nothing ran");
        assert!(link_events().await.is_empty(), "no link was signed, none audited");

        // A page of documents with a link each is well within the budget, and
        // is audited as one event naming every version.
        let page = w.app.gql_as(&w.host, &read_key, "{ documents(first: 100) { edges { node { id downloadUrl { url } } } } }").await;
        let edges = page.body["data"]["documents"]["edges"].as_array().unwrap_or_else(|| panic!("{:?}", page.body));
        assert_eq!(edges.len(), 3);
        let events = link_events().await;
        assert_eq!(events.len(), 1, "one event per request: {events:?}");
        let changes = &events[0]["node"]["changes"];
        assert_eq!(changes["links"], 3);
        let listed: Vec<&str> = changes["versions"].as_array().unwrap().iter().filter_map(|v| v["documentId"].as_str()).collect();
        assert_eq!(listed, ids.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(events[0]["node"]["targetId"].is_null(), "several documents: no single target");
    }
);

// Finding 16: names with bidirectional overrides, content types with CR/LF.

fn refused_field(a: &Answer) -> (Option<&str>, Option<&str>) {
    (a.code(), a.body["errors"][0]["extensions"]["field"].as_str())
}

on_both_backends!(
    async fn names_refuse_invisible_format_characters_and_content_types_are_checked_whole(app) {
        let spoof = "\u{202e}fdp.exe";
        let sign_up = app
            .gql_vars(
                API_HOST,
                &[],
                "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }",
                json!({ "i": { "agencyName": format!("Acme{spoof}"), "subdomain": "spoof", "email": "o@spoof.com",
                                "password": PASSWORD, "firstName": "O", "lastName": "N" } }),
            )
            .await;
        assert_eq!(refused_field(&sign_up), (Some("BAD_USER_INPUT"), Some("agencyName")), "{:?}", sign_up.body);

        let w = world(app, "names16").await;
        let as_owner = async |op: &str, vars: Value| w.app.gql_as_vars(&w.host, &w.owner.access, op, vars).await;
        let cases: Vec<(&str, Value, &str)> = vec![
            ("mutation($n: String!) { createClient(input: { name: $n }) { id } }", json!({ "n": spoof }), "name"),
            (
                "mutation($p: ID!, $n: String!) { createProject(input: { clientId: $p, name: $n }) { id } }",
                json!({ "p": "00000000-0000-7000-8000-000000000000", "n": "Site\u{200b}" }),
                "name",
            ),
            (
                "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
                json!({ "i": { "email": "x@names16.com", "password": PASSWORD, "firstName": "Ana", "lastName": "\u{2066}Silva\u{2069}", "role": "MEMBER" } }),
                "lastName",
            ),
            (
                "mutation($id: ID!, $n: String!) { updateUser(id: $id, input: { firstName: $n }) { id } }",
                json!({ "id": w.owner.user_id, "n": "\u{feff}Olga" }),
                "firstName",
            ),
            ("mutation($n: String!) { createApiKey(input: { name: $n, scope: READ }) { secret } }", json!({ "n": "ci\u{2060}" }), "name"),
        ];
        for (op, vars, field) in cases {
            let a = as_owner(op, vars).await;
            assert_eq!(refused_field(&a), (Some("BAD_USER_INPUT"), Some(field)), "{op}: {:?}", a.body);
        }

        // A document's name, given or taken from the file, and renamed.
        let named = w.upload(Some(spoof), "contract.pdf", "application/pdf", &pdf(100)).await;
        assert_eq!(refused_field(&named), (Some("BAD_USER_INPUT"), Some("name")), "{:?}", named.body);
        let from_file = w.upload(None, spoof, "application/pdf", &pdf(100)).await;
        assert_eq!(refused_field(&from_file), (Some("BAD_USER_INPUT"), Some("name")), "{:?}", from_file.body);
        assert!(w.stored_keys().await.is_empty(), "refused uploads leave no bytes");
        let doc = w.upload_ok("application/pdf", &pdf(100)).await;
        let rename = as_owner("mutation($id: ID!, $n: String!) { updateDocument(id: $id, input: { name: $n }) { id } }", json!({ "id": doc["id"], "n": spoof })).await;
        assert_eq!(refused_field(&rename), (Some("BAD_USER_INPUT"), Some("name")), "{:?}", rename.body);

        // The whole content type is checked, so nothing reaches a grant's headers.
        for bad in ["application/pdf\r\nx-amz-acl: public-read", "application/pdf; a=\"b\r\nc\"", "application/pdf; x", "application/pdf junk"] {
            let a = w.grant("c.pdf", bad, 100).await;
            assert_eq!(refused_field(&a), (Some("BAD_USER_INPUT"), Some("contentType")), "{bad:?}: {:?}", a.body);
        }
        let fine = w.grant("c.pdf", "Application/PDF; Version=\"1.7\"", 100).await;
        let headers = &fine.body["data"]["requestDocumentUpload"]["headers"];
        assert_eq!(headers[0], json!({ "name": "content-type", "value": "application/pdf; version=\"1.7\"" }), "{:?}", fine.body);
    }
);

// Finding 17: keys listed users; a vanished project answered INTERNAL.

on_local_and_s3!(
    async fn keys_never_read_users_and_a_vanished_project_is_not_found(app) {
        let w = world(app, "owners").await;
        for scope in ["READ", "READ_WRITE"] {
            let (key, _) = w.app.api_key(&w.owner, "owners", scope).await;
            for op in ["{ users { email role } }".to_owned(), format!("{{ user(id: \"{}\") {{ email }} }}", w.owner.user_id)] {
                let a = w.app.gql_as(&w.host, &key, &op).await;
                assert_eq!(a.code(), Some("FORBIDDEN"), "{scope} key, {op}: {:?}", a.body);
                assert!(!a.body.to_string().contains(&w.owner.email), "no email leaks");
            }
        }

        // A grant whose project is deleted before the upload is confirmed.
        let bytes = pdf(2000);
        let (url, token) = w.granted("orphan.pdf", "application/pdf", bytes.len()).await;
        assert!((200..300).contains(&w.put(&url, "application/pdf", &bytes).await));
        let gone = w.app.gql_as(&w.host, &w.owner.access, &format!("mutation {{ deleteProject(id: \"{}\") }}", w.project)).await;
        assert_eq!(gone.body["data"]["deleteProject"], true, "{:?}", gone.body);
        let confirmed = w.confirm(&token).await;
        assert_eq!(confirmed.code(), Some("NOT_FOUND"), "{:?}", confirmed.body);
        assert_eq!(confirmed.body["errors"][0]["message"], "project not found");
        assert!(w.stored_keys().await.is_empty(), "the bytes are removed");
        assert_eq!(w.document_count().await, 0);

        // An owner that vanishes between the check and the insert (a concurrent
        // delete) breaks a foreign key: that is NOT_FOUND too, not INTERNAL.
        let db = w.app.state.db.scoped(w.tenant());
        let now = Utc::now();
        let orphan = entity::documents::ActiveModel {
            id: sea_orm::ActiveValue::Set(uuid::Uuid::now_v7()),
            tenant_id: sea_orm::ActiveValue::Set(w.tenant()),
            project_id: sea_orm::ActiveValue::Set(w.project.parse().ok()),
            client_id: sea_orm::ActiveValue::Set(None),
            name: sea_orm::ActiveValue::Set("orphan.pdf".into()),
            content_type: sea_orm::ActiveValue::Set("application/pdf".into()),
            size_bytes: sea_orm::ActiveValue::Set(1),
            checksum_sha256: sea_orm::ActiveValue::Set("0".repeat(64)),
            current_version: sea_orm::ActiveValue::Set(1),
            uploaded_by: sea_orm::ActiveValue::Set(None),
            created_by: sea_orm::ActiveValue::Set(None),
            created_at: sea_orm::ActiveValue::Set(now),
            updated_at: sea_orm::ActiveValue::Set(now),
        };
        let err = aggios::store::documents::insert(&db, orphan, "project").await.expect_err("the project is gone");
        db.finish(false).await.unwrap();
        assert_eq!(err.code(), "NOT_FOUND", "{err:?}");
    }
);

#[tokio::test]
async fn a_file_is_recorded_by_one_field_only() {
    let w = world(TestApp::new(Backend::Sqlite).await, "one-field").await;
    // One file, its upload index also given by hand to a second field.
    let op = "mutation($a: UploadDocumentInput!, $b: UploadDocumentInput!) { a: uploadDocument(input: $a) { id } b: uploadDocument(input: $b) { id } }";
    let vars = json!({
        "a": { "projectId": w.project, "name": "a", "file": null },
        "b": { "projectId": w.project, "name": "b", "file": "#__graphql_file__:0" },
    });
    let file = [FilePart { path: "variables.a.file", filename: "a.pdf", content_type: "application/pdf", bytes: &pdf(100) }];
    let a = w.app.gql_upload(&w.host, &w.owner.access, op, vars, &file).await;
    assert_eq!(a.code(), Some("BAD_USER_INPUT"), "{:?}", a.body);
    assert_eq!(w.document_count().await, 0);
    assert!(w.stored_keys().await.is_empty());
}

on_both_backends!(
    async fn keys_do_not_learn_who_uploaded_a_document(app) {
        let w = world(app, "uploads").await;
        w.upload_ok("application/pdf", &pdf(100)).await;
        let op = "{ documents { edges { node { name uploader { email } } } } }";
        let member = w.app.gql_as(&w.host, &w.owner.access, op).await;
        assert_eq!(member.body["data"]["documents"]["edges"][0]["node"]["uploader"]["email"], w.owner.email.as_str());
        for scope in ["READ", "READ_WRITE"] {
            let (key, _) = w.app.api_key(&w.owner, "uploads", scope).await;
            let a = w.app.gql_as(&w.host, &key, op).await;
            assert_eq!(a.code(), Some("FORBIDDEN"), "{scope} key: {:?}", a.body);
            assert_eq!(a.body["data"]["documents"]["edges"][0]["node"]["name"], "file.bin", "the documents themselves are the key's to read");
            assert!(!a.body.to_string().contains(&w.owner.email), "no email leaks: {:?}", a.body);
        }
    }
);
