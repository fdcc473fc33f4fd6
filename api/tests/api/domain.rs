//! Clients, projects and documents: validation, conflicts, connections,
//! batched nested fields, the audit trail, and isolation.

use serde_json::{Value, json};

use crate::helpers::*;

async fn make(app: &TestApp, who: &Signed, sub: &str, op: &str, vars: Value) -> String {
    let a = app.gql_as_vars(&host(sub), &who.access, op, vars).await;
    let first = a.body["data"].as_object().and_then(|o| o.values().next().cloned()).unwrap_or(Value::Null);
    first["id"].as_str().unwrap_or_else(|| panic!("{op}: {:?}", a.body)).to_owned()
}

async fn client(app: &TestApp, who: &Signed, sub: &str, name: &str) -> String {
    make(app, who, sub, "mutation($n: String!) { createClient(input: { name: $n }) { id } }", json!({ "n": name })).await
}

async fn project(app: &TestApp, who: &Signed, sub: &str, client: &str, name: &str) -> String {
    make(app, who, sub, "mutation($c: ID!, $n: String!) { createProject(input: { clientId: $c, name: $n }) { id } }", json!({ "c": client, "n": name })).await
}

async fn document(app: &TestApp, who: &Signed, sub: &str, project: &str, name: &str) -> String {
    let bytes = b"%PDF-1.7\nbrief".to_vec();
    let a = app
        .gql_upload(
            &host(sub),
            &who.access,
            "mutation($input: UploadDocumentInput!) { uploadDocument(input: $input) { id } }",
            json!({ "input": { "projectId": project, "name": name, "file": null } }),
            &[FilePart { path: "variables.input.file", filename: "brief.pdf", content_type: "application/pdf", bytes: &bytes }],
        )
        .await;
    a.body["data"]["uploadDocument"]["id"].as_str().unwrap_or_else(|| panic!("upload: {:?}", a.body)).to_owned()
}

on_both_backends! {
    async fn bad_input_is_refused_by_field_and_deleting_a_client_with_projects_needs_cascade(app) {
        let owner = app.sign_up("acme").await;
        let h = host("acme");
        for (input, field) in [
            (json!({ "name": "" }), "name"),
            (json!({ "name": "x".repeat(201) }), "name"),
            (json!({ "name": "Globo", "email": "not-an-email" }), "email"),
            (json!({ "name": "Globo", "phone": "call me maybe" }), "phone"),
        ] {
            let a = app.gql_as_vars(&h, &owner.access, "mutation($i: CreateClientInput!) { createClient(input: $i) { id } }", json!({ "i": input })).await;
            assert_eq!(a.code(), Some("BAD_USER_INPUT"), "{input}: {:?}", a.body);
            assert_eq!(a.body["errors"][0]["extensions"]["field"], field);
        }
        let bad_status = app.gql_as(&h, &owner.access, "mutation { createClient(input: { name: \"G\", status: SLEEPING }) { id } }").await;
        assert!(bad_status.body["errors"][0]["message"].as_str().is_some_and(|m| m.contains("SLEEPING")), "{:?}", bad_status.body);

        let c = client(&app, &owner, "acme", "Globo").await;
        let p = project(&app, &owner, "acme", &c, "Site").await;
        document(&app, &owner, "acme", &p, "brief.pdf").await;
        let refused = app.gql_as(&h, &owner.access, &format!("mutation {{ deleteClient(id: \"{c}\") }}")).await;
        assert_eq!(refused.code(), Some("CONFLICT"), "{:?}", refused.body);
        assert!(refused.body["errors"][0]["message"].as_str().unwrap().contains("cascade"));
        let deleted = app.gql_as(&h, &owner.access, &format!("mutation {{ deleteClient(id: \"{c}\", cascade: true) }}")).await;
        assert_eq!(deleted.body["data"]["deleteClient"], true, "{:?}", deleted.body);
        let left = app.gql_as(&h, &owner.access, "{ projects { edges { node { id } } } documents { edges { node { id } } } }").await;
        assert_eq!(left.body["data"]["projects"]["edges"], json!([]));
        assert_eq!(left.body["data"]["documents"]["edges"], json!([]));
    }
}

on_both_backends! {
    async fn connections_page_both_ways_with_filters_and_a_capped_size(app) {
        let owner = app.sign_up("acme").await;
        let h = host("acme");
        for name in ["Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta", "100% Agency"] {
            client(&app, &owner, "acme", name).await;
        }
        let page = async |args: String| {
            let q = format!("{{ clients({args}) {{ edges {{ cursor node {{ name }} }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}");
            app.gql_as(&h, &owner.access, &q).await.body["data"]["clients"].clone()
        };
        let names = |c: &Value| c["edges"].as_array().unwrap().iter().map(|e| e["node"]["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
        let one = page("first: 3".into()).await;
        assert_eq!(names(&one), ["Alpha", "Beta", "Gamma"]);
        assert_eq!(one["pageInfo"]["hasNextPage"], true);
        let two = page(format!("first: 3, after: \"{}\"", one["pageInfo"]["endCursor"].as_str().unwrap())).await;
        assert_eq!(names(&two), ["Delta", "Epsilon", "Zeta"]);
        let three = page(format!("first: 3, after: \"{}\"", two["pageInfo"]["endCursor"].as_str().unwrap())).await;
        assert_eq!((names(&three), three["pageInfo"]["hasNextPage"].clone()), (vec!["100% Agency".to_owned()], json!(false)));
        let back = page(format!("last: 2, before: \"{}\"", two["pageInfo"]["startCursor"].as_str().unwrap())).await;
        assert_eq!(names(&back), ["Beta", "Gamma"]);
        assert_eq!(back["pageInfo"]["hasPreviousPage"], true);
        // Filters: case-insensitive name search with literal `%`.
        assert_eq!(names(&page("filter: { nameContains: \"ETA\" }".into()).await), ["Beta", "Zeta"]);
        assert_eq!(names(&page("filter: { nameContains: \"0%\" }".into()).await), ["100% Agency"]);
        assert_eq!(names(&page("filter: { status: ARCHIVED }".into()).await), Vec::<String>::new());
        // The page size is capped, and a forged cursor is refused by name.
        let big = app.gql_as(&h, &owner.access, "{ clients(first: 101) { edges { cursor } } }").await;
        assert_eq!((big.code(), big.body["errors"][0]["extensions"]["field"].as_str()), (Some("BAD_USER_INPUT"), Some("first")));
        let forged = app.gql_as(&h, &owner.access, "{ clients(after: \"bm90LWEtY3Vyc29y\") { edges { cursor } } }").await;
        assert_eq!(forged.code(), Some("BAD_USER_INPUT"));
    }
}

const NESTED: &str = "query($n: Int!) { projects(first: $n) { edges { node { name client { name } documents(first: 5) { name sizeBytes uploader { email } } } } } }";

async fn statements(app: &TestApp, who: &Signed, n: usize) -> (u64, Value) {
    let a = app.gql_as_vars(&host("acme"), &who.access, NESTED, json!({ "n": n })).await;
    assert!(a.body["errors"].is_null(), "{:?}", a.body);
    let count = a.headers.get("x-aggios-sql-statements").unwrap().to_str().unwrap().parse().unwrap();
    (count, a.body["data"]["projects"]["edges"].clone())
}

async fn seed(app: &TestApp, who: &Signed, clients: usize, projects_each: usize, docs_each: usize) {
    for c in 0..clients {
        let cid = client(app, who, "acme", &format!("Client {c}")).await;
        for p in 0..projects_each {
            let pid = project(app, who, "acme", &cid, &format!("Project {c}.{p}")).await;
            for d in 0..docs_each {
                document(app, who, "acme", &pid, &format!("doc {c}.{p}.{d}.pdf")).await;
            }
        }
    }
}

on_both_backends! {
    async fn nested_fields_cost_the_same_statements_when_pages_and_data_grow_tenfold(app) {
        let owner = app.sign_up("acme").await;
        seed(&app, &owner, 1, 2, 6).await;
        let (small, edges) = statements(&app, &owner, 2).await;
        assert_eq!(edges.as_array().unwrap().len(), 2);
        let first = &edges[0]["node"];
        assert_eq!(first["client"]["name"], "Client 0");
        assert_eq!(first["documents"].as_array().unwrap().len(), 5, "first: 5 of 6 documents");
        assert_eq!(first["documents"][0]["uploader"]["email"], "owner@acme.com");

        seed(&app, &owner, 9, 2, 6).await;
        let (large, edges) = statements(&app, &owner, 20).await;
        assert_eq!(edges.as_array().unwrap().len(), 20);
        assert_eq!(small, large, "statements grew with the data: {small} -> {large}");
        // One page query, then one batch each: clients, documents, uploaders.
        assert_eq!(large, 4);
    }
}

on_both_backends! {
    async fn every_change_is_audited_in_its_transaction_and_a_refused_one_leaves_nothing(app) {
        let owner = app.sign_up("acme").await;
        let h = host("acme");
        let rid = [("x-request-id", "audit-test-1"), ("authorization", &format!("Bearer {}", owner.access))];
        let created = app.gql_with(&h, &rid, "mutation { createClient(input: { name: \"Globo\", email: \"hi@globo.com\" }) { id } }").await;
        let id = created.body["data"]["createClient"]["id"].as_str().unwrap().to_owned();
        app.gql_as(&h, &owner.access, &format!("mutation {{ updateClient(id: \"{id}\", input: {{ status: ARCHIVED, email: null }}) {{ id }} }}")).await;
        // Refused: nothing happens and nothing is recorded.
        let bad = app.gql_as(&h, &owner.access, &format!("mutation {{ updateClient(id: \"{id}\", input: {{ name: \"\" }}) {{ id }} }}")).await;
        assert_eq!(bad.code(), Some("BAD_USER_INPUT"));
        app.gql_as(&h, &owner.access, &format!("mutation {{ deleteClient(id: \"{id}\") }}")).await;

        let events = app.gql_as(&h, &owner.access, "{ auditEvents(filter: { targetType: \"client\" }) { edges { node { action targetId actorUserId requestId changes } } } }").await;
        let events: Vec<Value> = events.body["data"]["auditEvents"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
        let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["client.create", "client.update", "client.delete"]);
        assert!(events.iter().all(|e| e["targetId"] == id.as_str() && e["actorUserId"] == owner.user_id.as_str()));
        assert_eq!(events[0]["requestId"], "audit-test-1");
        assert_eq!(events[0]["changes"]["email"], "hi@globo.com");
        assert_eq!(events[1]["changes"], json!({ "status": "ARCHIVED", "email": null }));
    }
}

on_both_backends! {
    async fn another_tenants_domain_ids_are_not_found_here(app) {
        let a = app.sign_up("acme").await;
        let b = app.sign_up("globex").await;
        let bc = client(&app, &b, "globex", "B client").await;
        let bp = project(&app, &b, "globex", &bc, "B project").await;
        let bd = document(&app, &b, "globex", &bp, "b.pdf").await;
        let h = host("acme");
        for op in [
            format!("{{ client(id: \"{bc}\") {{ id }} }}"),
            format!("{{ project(id: \"{bp}\") {{ id }} }}"),
            format!("{{ document(id: \"{bd}\") {{ id }} }}"),
            format!("mutation {{ updateClient(id: \"{bc}\", input: {{ name: \"X\" }}) {{ id }} }}"),
            format!("mutation {{ deleteProject(id: \"{bp}\") }}"),
            format!("mutation {{ deleteDocument(id: \"{bd}\") }}"),
            format!("mutation {{ createProject(input: {{ clientId: \"{bc}\", name: \"X\" }}) {{ id }} }}"),
            format!("mutation {{ requestDocumentUpload(input: {{ projectId: \"{bp}\", name: \"x\", contentType: \"text/plain\", sizeBytes: 1 }}) {{ uploadToken }} }}"),
        ] {
            let r = app.gql_as(&h, &a.access, &op).await;
            assert_eq!(r.code(), Some("NOT_FOUND"), "{op}: {:?}", r.body);
        }
        let listed = app.gql_as(&h, &a.access, &format!("{{ projects(filter: {{ clientId: \"{bc}\" }}) {{ edges {{ node {{ id }} }} }} }}")).await;
        assert_eq!(listed.body["data"]["projects"]["edges"], json!([]));
        let still = app.gql_as(&host("globex"), &b.access, &format!("{{ document(id: \"{bd}\") {{ name }} }}")).await;
        assert_eq!(still.body["data"]["document"]["name"], "b.pdf");
    }
}
