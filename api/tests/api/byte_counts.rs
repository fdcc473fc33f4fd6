//! Byte counts are `ByteCount`, not GraphQL's 32-bit `Int`: quotas, file
//! sizes and limits past 2 GiB go in and come out exactly, as JSON numbers
//! up to 2^53 − 1, and the input rules are the scalar's, through real
//! requests.

use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, sea_query::Expr};
use serde_json::{Value, json};

use crate::{cli::aggios, files::world, helpers::*};

const GIB: u64 = 1024 * 1024 * 1024;
/// JavaScript's `Number.MAX_SAFE_INTEGER`.
const MAX: u64 = (1 << 53) - 1;
const USAGE: &str = "{ storageUsage { quotaBytes usedBytes maxFileBytes } }";
const GRANT: &str = "mutation($i: RequestDocumentUploadInput!) { requestDocumentUpload(input: $i) { uploadToken } }";

/// Asserts `v` is this exact JSON integer (not a float, not a string).
fn exactly(v: &Value, n: u64) {
    assert!(v.is_u64() && v.as_u64() == Some(n), "expected the JSON number {n}, got {v}");
}

/// The app with 6 GiB files allowed, so sizes past 2^31 and 2^32 can be granted.
async fn large_files_app() -> TestApp {
    TestApp::builder(Backend::Sqlite)
        .with_settings(|s| {
            s.storage.max_file_bytes = 6 * GIB;
            s.storage.max_request_bytes = 6 * GIB + 1024 * 1024;
        })
        .build()
        .await
}

#[tokio::test]
async fn a_10_gib_quota_set_from_the_command_line_reads_back_exactly() {
    let w = world(TestApp::new(Backend::Postgres).await, "tengib").await;
    aggios::store::tenants::set_quota(w.app.state.db.platform(), w.tenant(), 1024).await.unwrap();
    let small = w.app.gql_as(&w.host, &w.owner.access, USAGE).await;
    exactly(&small.body["data"]["storageUsage"]["quotaBytes"], 1024);

    let dir = tempfile::tempdir().unwrap();
    let out = aggios()
        .current_dir(dir.path())
        .args(["tenant", "quota", "--subdomain", "tengib", "--bytes", "10737418240"])
        .env("AGGIOS_DATABASE_URL", &w.app.pg.as_ref().unwrap().url)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let usage = w.app.gql_as(&w.host, &w.owner.access, USAGE).await;
    assert!(usage.body["errors"].is_null(), "{:?}", usage.body);
    let usage = &usage.body["data"]["storageUsage"];
    exactly(&usage["quotaBytes"], 10 * GIB);
    exactly(&usage["quotaBytes"], 10_737_418_240);
    exactly(&usage["usedBytes"], 0);
    exactly(&usage["maxFileBytes"], 2 * GIB);
}

#[tokio::test]
async fn a_count_is_exact_up_to_2_pow_53_minus_1_and_never_rounded_past_it() {
    let w = world(TestApp::new(Backend::Sqlite).await, "edge").await;
    let set = |bytes: u64| aggios::store::tenants::set_quota(w.app.state.db.platform(), w.tenant(), bytes as i64);

    set(MAX).await.unwrap();
    let usage = w.app.gql_as(&w.host, &w.owner.access, USAGE).await;
    exactly(&usage.body["data"]["storageUsage"]["quotaBytes"], 9_007_199_254_740_991);

    // A quota stored past what the scalar carries is the server's fault,
    // said as such, not a number a client would read as another one.
    set(MAX + 1).await.unwrap();
    let past = w.app.gql_as(&w.host, &w.owner.access, USAGE).await;
    assert_eq!(past.code(), Some("INTERNAL"), "{:?}", past.body);
    assert_eq!(past.body["errors"][0]["path"], json!(["storageUsage", "quotaBytes"]));
    let usage = &past.body["data"]["storageUsage"];
    assert!(usage["quotaBytes"].is_null(), "{:?}", past.body);
    exactly(&usage["usedBytes"], 0);
}

#[tokio::test]
async fn sizes_past_2_gib_go_in_as_numbers_or_strings_and_come_out_exactly() {
    let w = world(large_files_app().await, "bigfiles").await;
    let grant = |size: Value| {
        let input = json!({ "projectId": w.project, "name": "big.bin", "contentType": "application/octet-stream", "sizeBytes": size });
        w.app.gql_as_vars(&w.host, &w.owner.access, GRANT, json!({ "i": input }))
    };

    // 3 GiB as a string (past i32), 4 GiB as a number (past u32): both are
    // reserved against the quota, and the use reads back exactly.
    let a = grant(json!("3221225472")).await;
    assert!(a.body["data"]["requestDocumentUpload"]["uploadToken"].is_string(), "{:?}", a.body);
    let a = grant(json!(4_294_967_296_u64)).await;
    assert!(a.body["data"]["requestDocumentUpload"]["uploadToken"].is_string(), "{:?}", a.body);
    let usage = w.app.gql_as(&w.host, &w.owner.access, USAGE).await;
    let usage = &usage.body["data"]["storageUsage"];
    exactly(&usage["usedBytes"], 3 * GIB + 4 * GIB);
    exactly(&usage["maxFileBytes"], 6 * GIB);

    // A literal in the document works the same way.
    let literal = format!(
        "mutation {{ requestDocumentUpload(input: {{ projectId: \"{}\", name: \"lit.bin\", contentType: \"application/octet-stream\", sizeBytes: \"2147483648\" }}) {{ uploadToken }} }}",
        w.project
    );
    let a = w.app.gql_as(&w.host, &w.owner.access, &literal).await;
    assert!(a.body["data"]["requestDocumentUpload"]["uploadToken"].is_string(), "{:?}", a.body);

    // A stored document of 5 GiB (its bytes are not the point here) reads
    // back exactly, on the document and on its version.
    let doc = w.upload_ok("application/pdf", &crate::files::pdf(100)).await;
    let id: uuid::Uuid = doc["id"].as_str().unwrap().parse().unwrap();
    let set_size = async |bytes: i64| {
        let db = w.app.state.db.scoped(w.tenant());
        entity::documents::Entity::update_many()
            .col_expr(entity::documents::Column::SizeBytes, Expr::value(bytes))
            .filter(entity::documents::Column::Id.eq(id))
            .exec(&db)
            .await
            .unwrap();
        entity::document_versions::Entity::update_many()
            .col_expr(entity::document_versions::Column::SizeBytes, Expr::value(bytes))
            .filter(entity::document_versions::Column::DocumentId.eq(id))
            .exec(&db)
            .await
            .unwrap();
        db.finish(true).await.unwrap();
    };
    set_size(5 * GIB as i64).await;
    let q = format!("{{ document(id: \"{id}\") {{ sizeBytes versions {{ sizeBytes }} }} }}");
    let read = w.app.gql_as(&w.host, &w.owner.access, &q).await;
    exactly(&read.body["data"]["document"]["sizeBytes"], 5_368_709_120);
    exactly(&read.body["data"]["document"]["versions"][0]["sizeBytes"], 5_368_709_120);

    // A stored size the scalar cannot carry answers INTERNAL on that field,
    // and only when it is asked for.
    set_size(-1).await;
    let read = w.app.gql_as(&w.host, &w.owner.access, &q).await;
    assert_eq!(read.code(), Some("INTERNAL"), "{:?}", read.body);
    assert_eq!(read.body["errors"][0]["path"], json!(["document", "sizeBytes"]));
    let other = w.app.gql_as(&w.host, &w.owner.access, &format!("{{ document(id: \"{id}\") {{ name }} }}")).await;
    assert!(other.body["errors"].is_null(), "{:?}", other.body);
}

#[tokio::test]
async fn a_byte_count_is_refused_unless_it_is_a_whole_number_from_0_to_2_pow_53_minus_1() {
    let w = world(large_files_app().await, "parsing").await;
    let grant = |size: Value| {
        let input = json!({ "projectId": w.project, "name": "x.bin", "contentType": "application/octet-stream", "sizeBytes": size });
        w.app.gql_as_vars(&w.host, &w.owner.access, GRANT, json!({ "i": input }))
    };

    for (size, why) in [
        (json!(-1), "cannot be negative"),
        (json!(-3_221_225_472_i64), "cannot be negative"),
        (json!(1.5), "whole number"),
        (json!(2_147_483_648.5), "whole number"),
        (json!(9_007_199_254_740_992_u64), "larger than the largest byte count, 9007199254740991"),
        (json!(u64::MAX), "larger than the largest byte count"),
        (json!("9007199254740992"), "larger than the largest byte count"),
        (json!("99999999999999999999999999"), "larger than the largest byte count"),
        (json!("-1"), "decimal digits only"),
        (json!("+1"), "decimal digits only"),
        (json!(" 1"), "decimal digits only"),
        (json!("1e9"), "decimal digits only"),
        (json!("1.0"), "decimal digits only"),
        (json!("0x10"), "decimal digits only"),
        (json!("three gigabytes"), "decimal digits only"),
        (json!(""), "decimal digits only"),
        (json!(true), "ByteCount"),
        (json!([1]), "ByteCount"),
        (json!({ "bytes": 1 }), "ByteCount"),
    ] {
        let a = grant(size.clone()).await;
        let message = a.body["errors"][0]["message"].as_str().unwrap_or_else(|| panic!("{size} was taken: {:?}", a.body));
        assert!(message.contains(why) && message.contains("ByteCount"), "{size}: {message}");
        assert_eq!(a.code(), Some("BAD_USER_INPUT"), "{size}: {:?}", a.body);
        assert!(a.body["data"].is_null() || a.body["data"]["requestDocumentUpload"].is_null(), "{size}: {:?}", a.body);
    }

    // The same in the document itself.
    for (literal, why) in [("-1", "cannot be negative"), ("1.5", "whole number"), ("\"12 bytes\"", "decimal digits only")] {
        let op = format!(
            "mutation {{ requestDocumentUpload(input: {{ projectId: \"{}\", name: \"x.bin\", contentType: \"application/octet-stream\", sizeBytes: {literal} }}) {{ uploadToken }} }}",
            w.project
        );
        let a = w.app.gql_as(&w.host, &w.owner.access, &op).await;
        let message = a.body["errors"][0]["message"].as_str().unwrap_or_else(|| panic!("{literal} was taken: {:?}", a.body));
        assert!(message.contains(why), "{literal}: {message}");
        assert_eq!(a.code(), Some("BAD_USER_INPUT"), "{literal}: {:?}", a.body);
    }

    // Nothing above was granted or reserved.
    let usage = w.app.gql_as(&w.host, &w.owner.access, USAGE).await;
    exactly(&usage.body["data"]["storageUsage"]["usedBytes"], 0);

    // 2^53 − 1 itself is a byte count, as a number and as a string: it
    // passes the scalar and is refused only by the file-size limit.
    for size in [json!(MAX), json!("9007199254740991")] {
        let a = grant(size.clone()).await;
        assert_eq!(a.code(), Some("PAYLOAD_TOO_LARGE"), "{size}: {:?}", a.body);
    }
    // And the bounds of the limit: 6 GiB is taken, a byte more is not.
    assert_eq!(grant(json!(6 * GIB + 1)).await.code(), Some("PAYLOAD_TOO_LARGE"));
    let a = grant(json!((6 * GIB).to_string())).await;
    assert!(a.body["data"]["requestDocumentUpload"]["uploadToken"].is_string(), "{:?}", a.body);
    let usage = w.app.gql_as(&w.host, &w.owner.access, USAGE).await;
    exactly(&usage.body["data"]["storageUsage"]["usedBytes"], 6 * GIB);
}

/// Every field, argument and input field whose name counts bytes is a
/// `ByteCount`, so a new one cannot come back as `Int`.
#[tokio::test]
async fn every_byte_count_in_the_schema_is_a_byte_count() {
    let app = TestApp::new(Backend::Sqlite).await;
    let type_ref = "type { name kind ofType { name kind ofType { name kind ofType { name } } } }";
    let q = format!(
        "{{ __type(name: \"ByteCount\") {{ kind description }} __schema {{ types {{ name fields {{ name {type_ref} args {{ name {type_ref} }} }} inputFields {{ name {type_ref} }} }} }} }}"
    );
    let a = app.gql(API_HOST, &q).await;
    assert_eq!(a.body["data"]["__type"]["kind"], "SCALAR", "{:?}", a.body);
    assert!(a.body["data"]["__type"]["description"].as_str().unwrap().contains("9007199254740991"));

    fn named(t: &Value) -> &str {
        t["name"].as_str().unwrap_or_else(|| named(&t["ofType"]))
    }
    let mut seen = Vec::new();
    for ty in a.body["data"]["__schema"]["types"].as_array().unwrap() {
        let tname = ty["name"].as_str().unwrap();
        if tname.starts_with("__") {
            continue;
        }
        let fields = ty["fields"].as_array().into_iter().flatten();
        let args = fields.clone().flat_map(|f| f["args"].as_array().into_iter().flatten());
        let inputs = ty["inputFields"].as_array().into_iter().flatten();
        for item in fields.chain(args).chain(inputs) {
            let name = item["name"].as_str().unwrap();
            if name.ends_with("Bytes") || name.ends_with("Size") || name == "size" {
                assert_eq!(named(&item["type"]), "ByteCount", "{tname}.{name}");
                seen.push(format!("{tname}.{name}"));
            }
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "Document.sizeBytes",
            "DocumentVersion.sizeBytes",
            "RequestDocumentUploadInput.sizeBytes",
            "StorageUsage.maxFileBytes",
            "StorageUsage.quotaBytes",
            "StorageUsage.usedBytes",
        ]
    );
}
