//! Planned reads answer exactly as the resolvers do: a corpus of nested
//! operations (every relation, `first`, filters, cursors, aliases,
//! fragments, directives, errors in the middle of a list) sent to an
//! instance that plans and to one that resolves field by field, over the
//! same data, must give the same bytes, on both backends.

use serde_json::{Value, json};

use crate::helpers::*;

async fn id_of(a: Answer, field: &str) -> String {
    a.body["data"][field]["id"].as_str().unwrap_or_else(|| panic!("{field}: {:?}", a.body)).to_owned()
}

async fn upload(app: &TestApp, token: &str, target: (&str, &str), name: &str) -> String {
    let bytes = format!("%PDF-1.7\n{name}").into_bytes();
    let a = app
        .gql_upload(
            &host("acme"),
            token,
            "mutation($input: UploadDocumentInput!) { uploadDocument(input: $input) { id } }",
            json!({ "input": { target.0: target.1, "name": name, "file": null } }),
            &[FilePart { path: "variables.input.file", filename: "f.pdf", content_type: "application/pdf", bytes: &bytes }],
        )
        .await;
    a.body["data"]["uploadDocument"]["id"].as_str().unwrap_or_else(|| panic!("upload: {:?}", a.body)).to_owned()
}

/// Three clients (one with no project), projects with 0 to 7 documents
/// from two members and an API key, a document on a client alone, a
/// second version, and another agency's rows around them.
async fn seed(app: &TestApp) -> (Signed, String, Vec<String>) {
    let owner = app.sign_up("acme").await;
    let member = app.add_user(&owner, "acme", "mia", "MEMBER").await;
    let (key, _) = app.api_key(&owner, "acme", "READ_WRITE").await;
    let other = app.sign_up("globex").await;
    let mut ids = Vec::new();
    for (c, status) in [("Northwind", "ACTIVE"), ("Initech", "PROSPECT"), ("Hooli", "ARCHIVED")] {
        let a = app
            .gql_as_vars(
                &host("acme"),
                &owner.access,
                "mutation($n: String!, $s: ClientStatus!) { createClient(input: { name: $n, status: $s, email: \"hi@x.test\" }) { id } }",
                json!({ "n": c, "s": status }),
            )
            .await;
        ids.push(id_of(a, "createClient").await);
    }
    let mut projects = Vec::new();
    for (i, (client, name, docs)) in [(0, "Rebrand", 7), (0, "Launch", 2), (1, "Audit", 0), (1, "Portal", 3)].into_iter().enumerate() {
        let a = app
            .gql_as_vars(
                &host("acme"),
                &owner.access,
                "mutation($c: ID!, $n: String!, $d: NaiveDate) { createProject(input: { clientId: $c, name: $n, dueDate: $d, status: ACTIVE }) { id } }",
                json!({ "c": ids[client], "n": name, "d": if i % 2 == 0 { json!("2027-01-15") } else { Value::Null } }),
            )
            .await;
        let pid = id_of(a, "createProject").await;
        for d in 0..docs {
            let token = [&owner.access, &member.access, &key][d % 3];
            upload(app, token, ("projectId", &pid), &format!("{name}-{d}.pdf")).await;
        }
        projects.push(pid);
    }
    upload(app, &owner.access, ("clientId", &ids[2]), "contract.pdf").await;
    // Another agency's rows, which no answer may show.
    let a = app.gql_as(&host("globex"), &other.access, "mutation { createClient(input: { name: \"Globex client\" }) { id } }").await;
    let gc = id_of(a, "createClient").await;
    let a = app
        .gql_as_vars(&host("globex"), &other.access, "mutation($c: ID!) { createProject(input: { clientId: $c, name: \"Globex project\" }) { id } }", json!({ "c": gc }))
        .await;
    let gp = id_of(a, "createProject").await;
    let gtoken = other.access.clone();
    let bytes = b"%PDF-1.7\nglobex".to_vec();
    app.gql_upload(
        &host("globex"),
        &gtoken,
        "mutation($input: UploadDocumentInput!) { uploadDocument(input: $input) { id } }",
        json!({ "input": { "projectId": gp, "file": null } }),
        &[FilePart { path: "variables.input.file", filename: "g.pdf", content_type: "application/pdf", bytes: &bytes }],
    )
    .await;
    ids.extend(projects);
    ids.push(key);
    ids.push(gp);
    (owner, member.access, ids)
}

const FULL_PROJECT: &str = "fragment P on Project { id name description status dueDate createdAt updatedAt }";

/// The corpus: (operation, variables). `$c0`.. are client ids, `$p0`.. project ids.
fn corpus() -> Vec<(String, Value)> {
    let ops: Vec<(&str, Value)> = vec![
        ("{ projects(first: 50) { edges { node { name client { name } documents(first: 5) { name sizeBytes uploader { email } } } } } }", json!({})),
        ("{ clients(first: 10) { edges { node { id name email } } } }", json!({})),
        ("{ clients { edges { cursor node { id name email phone status notes createdAt updatedAt } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }", json!({})),
        ("{ clients { nodes { name projects { name documents { name } } } } }", json!({})),
        ("{ clients { nodes { name projects(first: 1) { name } } } }", json!({})),
        ("{ clients { nodes { name projects(first: 0) { name } } } }", json!({})),
        ("query($n: Int!) { projects(first: $n) { pageInfo { hasNextPage endCursor } edges { node { name } } } }", json!({ "n": 2 })),
        ("query($after: String) { projects(first: 2, after: $after) { edges { cursor node { name } } pageInfo { hasNextPage hasPreviousPage } } }", json!({ "after": null })),
        ("{ projects(last: 2) { edges { cursor node { name client { name } } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }", json!({})),
        ("{ projects(first: 50) { nodes { ...P client { id name status } } } }", json!({})),
        ("{ projects { nodes { name documents(first: 100) { id name contentType sizeBytes checksumSha256 currentVersion createdAt updatedAt } } } }", json!({})),
        ("{ projects { nodes { name documents(first: 101) { name } } } }", json!({})),
        ("{ projects { nodes { name documents(first: -1) { name } } } }", json!({})),
        ("query($d: Int!) { projects { nodes { name documents(first: $d) { name } } } }", json!({ "d": 2 })),
        ("{ projects { nodes { name documents { name uploader { id email firstName lastName role isActive createdAt } } } } }", json!({})),
        ("{ documents(first: 100) { nodes { name project { name client { name } } client { name } uploader { email } } } }", json!({})),
        ("{ documents(first: 3) { edges { cursor node { name } } pageInfo { hasNextPage endCursor } } }", json!({})),
        ("{ documents(first: 100) { nodes { name versions { version sizeBytes } } } }", json!({})),
        ("{ a: projects(first: 1) { nodes { name } } b: projects(first: 2) { nodes { title: name client { who: name } } } }", json!({})),
        ("{ projects { nodes { name name client { name } client { id } } } }", json!({})),
        ("{ projects { nodes { ... on Project { name client { name } } ...P } } }", json!({})),
        ("fragment C on Client { name projects { ...Q } } fragment Q on Project { name documents(first: 2) { name } } { clients { nodes { ...C } } }", json!({})),
        ("query($s: Boolean!) { projects { nodes { name client @skip(if: $s) { name } documents @include(if: $s) { name } } } }", json!({ "s": true })),
        ("query($s: Boolean!) { projects { nodes { name client @skip(if: $s) { name } documents @include(if: $s) { name } } } }", json!({ "s": false })),
        ("{ projects { __typename edges { __typename node { __typename name client { __typename } } } pageInfo { __typename } } }", json!({})),
        ("{ projects(filter: { status: ACTIVE, nameContains: \"a\" }) { nodes { name } } }", json!({})),
        ("query($c: ID!) { projects(filter: { clientId: $c }) { nodes { name documents { name } } } }", json!({ "c": "$c0" })),
        ("query($c: ID!) { client(id: $c) { name projects { name documents(first: 3) { name uploader { email } } } } }", json!({ "c": "$c0" })),
        ("query($c: ID!) { client(id: $c) { ...on Client { id status } } }", json!({ "c": "$c2" })),
        ("query($p: ID!) { project(id: $p) { name client { name projects { name } } documents { name project { name } } } }", json!({ "p": "$p0" })),
        ("query($p: ID!) { project(id: $p) { name } }", json!({ "p": "$foreign" })),
        ("{ project(id: \"nope\") { name } }", json!({})),
        ("{ documents(filter: { nameContains: \"contract\" }) { nodes { name project { name } client { name projects { name } } } } }", json!({})),
        ("{ me { email } projects(first: 2) { nodes { name } } clients(first: 1) { nodes { name } } }", json!({})),
        ("{ projects(first: 101) { nodes { name } } }", json!({})),
        ("{ projects(first: 1, last: 1) { nodes { name } } }", json!({})),
        ("{ projects(after: \"garbage\") { nodes { name } } }", json!({})),
        ("{ clients(filter: { status: ARCHIVED }) { nodes { name projects { name } } } }", json!({})),
        ("{ projects { nodes { documents(first: 2) { uploader { email } name } client { name } name id } } }", json!({})),
    ];
    let mut out: Vec<(String, Value)> = ops.into_iter().map(|(q, v)| (q.to_owned(), v)).collect();
    for (q, _) in &mut out {
        if q.contains("...P") {
            q.push(' ');
            q.push_str(FULL_PROJECT);
        }
    }
    out
}

fn bind(vars: &Value, ids: &[String]) -> Value {
    let mut vars = vars.clone();
    if let Some(map) = vars.as_object_mut() {
        for v in map.values_mut() {
            let name = v.as_str().unwrap_or_default().to_owned();
            let id = match name.as_str() {
                "$c0" => Some(&ids[0]),
                "$c2" => Some(&ids[2]),
                "$p0" => Some(&ids[3]),
                "$foreign" => ids.last(),
                _ => None,
            };
            if let Some(id) = id {
                *v = json!(id);
            }
        }
    }
    vars
}

on_both_backends! {
    async fn planned_reads_give_the_resolvers_bytes_for_every_operation_of_the_corpus(app) {
        let (owner, member, ids) = seed(&app).await;
        let key = ids[ids.len() - 2].clone();
        let resolved = app.second_instance_with(|s| s.server.planned_reads = false).await;
        let corpus = corpus();
        assert!(corpus.len() >= 30, "the corpus has {} operations", corpus.len());
        let mut planned_some = 0;
        for (who, token) in [("owner", &owner.access), ("member", &member), ("api key", &key)] {
            for (query, vars) in &corpus {
                let vars = bind(vars, &ids);
                let a = app.gql_as_vars(&host("acme"), token, query, vars.clone()).await;
                let b = resolved.gql_as_vars(&host("acme"), token, query, vars.clone()).await;
                assert_eq!(a.status, b.status, "{who}: {query}");
                assert_eq!(a.raw, b.raw, "{who}: {query} {vars}");
                assert!(!a.raw.contains("Globex"), "{who}: {query}: another agency's data: {}", a.raw);
                let planned = |x: &Answer| x.headers.get("x-aggios-planned-reads").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                assert_eq!(planned(&b), Some(0), "{query}: the resolving instance planned");
                planned_some += usize::from(planned(&a).unwrap_or(0) > 0);
            }
        }
        // The data is there: the first operation (the benchmark's Q2) as the owner.
        let q2 = app.gql_as(&host("acme"), &owner.access, &corpus[0].0).await;
        for expected in ["\"Rebrand\"", "\"Rebrand-0.pdf\"", "\"owner@acme.com\"", "\"Northwind\"", "\"sizeBytes\":"] {
            assert!(q2.raw.contains(expected), "{expected} missing from {}", q2.raw);
        }
        // Fields come in the order they were asked, on both paths.
        let order = "{ projects(first: 1) { nodes { documents(first: 1) { uploader { email } name } client { name } name id } } }";
        for instance in [&app, &resolved] {
            let a = instance.gql_as(&host("acme"), &owner.access, order).await;
            assert!(
                a.raw.starts_with(r#"{"data":{"projects":{"nodes":[{"documents":[{"uploader":{"email":"#) && a.raw.contains(r#""client":{"name":"Northwind"},"name":"Rebrand","id":"#),
                "{}",
                a.raw
            );
        }
        // Most of the corpus is for plans; the rest (versions, errors) declines.
        assert!(planned_some >= 2 * corpus.len(), "only {planned_some} answers came from a plan");
    }
}
