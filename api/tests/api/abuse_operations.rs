//! The abuse cases of the OWASP GraphQL cheat sheet, each refused with the
//! code of the limit it breaks before anything executes (no SQL statement
//! ran, nothing was written) while normal queries sent at the same moment
//! are answered; and the operation timeout, which ends an operation that
//! runs too long and rolls back what it wrote. What a refusal costs the
//! server in time and memory is measured by `benches/abuse.py`, not here.

use std::time::Duration;

use futures::future::join_all;
use sea_orm::sqlx::{self, AssertSqlSafe, Connection as _};
use serde_json::{Value, json};

use crate::{
    files::{pdf, world},
    helpers::*,
};

const SUB: &str = "abuse";
const NORMAL: &str = "{ tenant { subdomain } }";

/// An agency with a client, on the embedded default.
async fn agency() -> (TestApp, Signed) {
    let app = TestApp::new(Backend::Sqlite).await;
    let owner = app.sign_up(SUB).await;
    let a = app.gql_as(&host(SUB), &owner.access, "mutation { createClient(input: { name: \"Acme\" }) { id } }").await;
    assert!(a.body["data"]["createClient"]["id"].is_string(), "{:?}", a.body);
    (app, owner)
}

async fn post(app: &TestApp, owner: &Signed, body: &Value) -> Answer {
    let req = app
        .client
        .post("/graphql")
        .header("host", host(SUB))
        .header("authorization", format!("Bearer {}", owner.access))
        .header("content-type", "application/json")
        .body(body.to_string());
    answer(req.send().await).await
}

/// Sends `body` four times at once, with four normal queries among them:
/// the normal ones are answered, and the abuse is refused each time with
/// the same answer, having run no SQL. Returns one of the refusals.
async fn refused(app: &TestApp, owner: &Signed, body: Value) -> Answer {
    let abuse = join_all((0..4).map(|_| post(app, owner, &body)));
    let tenant_host = host(SUB);
    let normal = join_all((0..4).map(|_| app.gql_as(&tenant_host, &owner.access, NORMAL)));
    let (refusals, normal) = tokio::join!(abuse, normal);
    for n in &normal {
        assert_eq!(n.body["data"]["tenant"]["subdomain"], SUB, "a normal query was not served: {:?}", n.body);
    }
    for r in &refusals {
        let statements = r.headers.get("x-aggios-sql-statements").map(|v| v.to_str().unwrap().to_owned());
        assert!(statements.is_none() || statements.as_deref() == Some("0"), "it executed: {statements:?} statements, {:?}", r.body);
        assert!(r.body.get("data").is_none_or(Value::is_null), "it executed: {:?}", r.body);
        assert_eq!(r.body, refusals[0].body);
    }
    refusals.into_iter().next().unwrap()
}

fn extension<'a>(a: &'a Answer, key: &str) -> &'a Value {
    &a.body["errors"][0]["extensions"][key]
}

fn message(a: &Answer) -> &str {
    a.body["errors"][0]["message"].as_str().unwrap_or_default()
}

async fn client_names(app: &TestApp, owner: &Signed) -> Vec<String> {
    let a = app.gql_as(&host(SUB), &owner.access, "{ clients(first: 100) { edges { node { name } } } }").await;
    let edges = a.body["data"]["clients"]["edges"].as_array().unwrap_or_else(|| panic!("{:?}", a.body)).clone();
    edges.iter().map(|e| e["node"]["name"].as_str().unwrap().to_owned()).collect()
}

fn query(text: impl Into<String>) -> Value {
    json!({ "query": text.into() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_aliases_of_a_field_are_refused_as_aliases_and_write_nothing() {
    let (app, owner) = agency().await;
    let creates: String = (0..5_000).map(|i| format!("c{i}: createClient(input: {{ name: \"Flood\" }}) {{ id }} ")).collect();
    let a = refused(&app, &owner, query(format!("mutation {{ {creates} }}"))).await;
    assert_eq!((a.status, a.code()), (200, Some("QUERY_TOO_MANY_ALIASES")), "{:?}", a.body);
    assert_eq!((extension(&a, "aliases"), extension(&a, "limit")), (&json!(5_000), &json!(15)));
    assert!(message(&a).contains("5000 aliased fields") && message(&a).contains("the limit is 15"), "{}", message(&a));
    assert_eq!(client_names(&app, &owner).await, ["Acme"], "nothing was written");

    // Of a query, in the media type that says so with its status.
    let reads: String = (0..5_000).map(|i| format!("t{i}: tenant {{ subdomain }} ")).collect();
    let a = app
        .client
        .post("/graphql")
        .header("host", host(SUB))
        .header("accept", "application/graphql-response+json")
        .body_json(&query(format!("{{ {reads} }}")))
        .send()
        .await;
    let a = answer(a).await;
    assert_eq!((a.status, a.code()), (400, Some("QUERY_TOO_MANY_ALIASES")), "{:?}", a.body);

    // Up to the limit, it runs.
    let fifteen: String = (0..15).map(|i| format!("s{i}: subdomain ")).collect();
    let a = app.gql_as(&host(SUB), &owner.access, &format!("{{ tenant {{ {fifteen} }} }}")).await;
    assert_eq!(a.body["data"]["tenant"]["s14"], SUB, "{:?}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_bomb_on_a_list_is_refused_by_its_aliases_and_within_them_by_its_cost() {
    let (app, owner) = agency().await;
    let links: String = (0..300).map(|i| format!("l{i}: downloadUrl {{ url }} ")).collect();
    let a = refused(&app, &owner, query(format!("{{ documents(first: 100) {{ edges {{ node {{ {links} }} }} }} }}"))).await;
    assert_eq!(a.code(), Some("QUERY_TOO_MANY_ALIASES"), "{:?}", a.body);
    assert_eq!(extension(&a, "aliases"), 300);

    // As many as the limit allows: 100 × (edges 1 + node 1 + 15 × (link 10 + url 1)).
    let links: String = (0..15).map(|i| format!("l{i}: downloadUrl {{ url }} ")).collect();
    let a = refused(&app, &owner, query(format!("{{ documents(first: 100) {{ edges {{ node {{ {links} }} }} }} }}"))).await;
    assert_eq!(a.code(), Some("QUERY_TOO_COMPLEX"), "{:?}", a.body);
    assert_eq!((extension(&a, "cost"), extension(&a, "limit")), (&json!(16_700), &json!(3_000)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_megabyte_document_is_refused_by_its_tokens() {
    let (app, owner) = agency().await;
    let fields = (1_000_000 - 4) / "__typename ".len();
    let document = format!("{{ {} }}", "__typename ".repeat(fields));
    assert!(document.len() > 999_000 && document.len() <= 1_000_000, "{}", document.len());
    let a = refused(&app, &owner, query(document)).await;
    assert_eq!(a.code(), Some("QUERY_TOO_MANY_TOKENS"), "{:?}", a.body);
    assert_eq!((extension(&a, "tokens"), extension(&a, "limit")), (&json!(fields + 2), &json!(1_000)));
    assert!(message(&a).contains("pass values as variables"), "{}", message(&a));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragment_cycles_are_refused_before_they_are_followed() {
    let (app, owner) = agency().await;
    let cycle = "{ ...A } fragment A on Query { tenant { ...B } } fragment B on Tenant { ...C } fragment C on Tenant { ...B }";
    let a = refused(&app, &owner, query(cycle)).await;
    assert_eq!(a.code(), Some("GRAPHQL_VALIDATION_FAILED"), "{:?}", a.body);
    assert!(message(&a).contains("`B` spreads itself (B → C → B)"), "{}", message(&a));

    // Fragments spreading the next one twice: no cycle, but 2^40 selections.
    let mut bomb = String::from("query { ...F0 }");
    for i in 0..40 {
        bomb.push_str(&format!(" fragment F{i} on Query {{ ...F{} ...F{} }}", i + 1, i + 1));
    }
    bomb.push_str(" fragment F40 on Query { __typename }");
    let a = refused(&app, &owner, query(bomb)).await;
    assert_eq!(a.code(), Some("QUERY_TOO_COMPLEX"), "{:?}", a.body);
    assert!(extension(&a, "selections").as_u64().unwrap() > 1 << 40, "{:?}", a.body);
    assert!(message(&a).contains("spread fragments fewer times"), "{}", message(&a));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_directives_are_refused_as_directives() {
    let (app, owner) = agency().await;
    let document = format!("{{ tenant {{ subdomain {} }} }}", "@skip(if: false) ".repeat(1_000));
    let a = refused(&app, &owner, query(document)).await;
    assert_eq!(a.code(), Some("QUERY_TOO_MANY_DIRECTIVES"), "{:?}", a.body);
    assert_eq!((extension(&a, "directives"), extension(&a, "limit")), (&json!(1_000), &json!(50)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_a_thousand_operations_is_refused_whole_and_writes_nothing() {
    let (app, owner) = agency().await;
    let op = json!({ "query": "mutation { createClient(input: { name: \"Batched\" }) { id } }" });
    let a = refused(&app, &owner, Value::Array(vec![op; 1_000])).await;
    assert_eq!((a.status, a.code()), (400, Some("BATCH_TOO_LARGE")), "{:?}", a.body);
    assert_eq!((extension(&a, "operations"), extension(&a, "limit")), (&json!(1_000), &json!(10)));
    assert_eq!(client_names(&app, &owner).await, ["Acme"], "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_list_cost_bomb_is_refused_with_its_cost_each_list_multiplying_what_it_holds() {
    let (app, owner) = agency().await;
    let nested = |n: u32, leaf: &str| {
        format!("{{ clients(first: {n}) {{ edges {{ node {{ projects(first: {n}) {{ documents(first: {n}) {{ {leaf} }} }} }} }} }} }}")
    };
    // documents 100 × (link 10 + url 1); projects 100 × that; node and
    // edges 1 each; clients 100 × the rest.
    let a = refused(&app, &owner, query(nested(100, "downloadUrl { url }"))).await;
    assert_eq!(a.code(), Some("QUERY_TOO_COMPLEX"), "{:?}", a.body);
    assert_eq!(extension(&a, "cost"), &json!(100 * (2 + 100 * (100 * 11))));
    // Pages of 20: 20 × (2 + 20 × 20) = 8,040; of 10: 10 × (2 + 10 × 10) = 1,020, which runs.
    let a = refused(&app, &owner, query(nested(20, "id"))).await;
    assert_eq!(extension(&a, "cost"), &json!(8_040));
    let ran = app.gql_as(&host(SUB), &owner.access, &nested(10, "id")).await;
    assert_eq!(ran.body["data"]["clients"]["edges"][0]["node"]["projects"], json!([]), "{:?}", ran.body);
}

#[tokio::test]
async fn the_limits_are_settings() {
    let app = TestApp::builder(Backend::Sqlite)
        .with_settings(|s| {
            s.limits.max_aliases = 20;
            s.limits.max_root_fields = 2;
            s.limits.max_tokens = 100;
            s.limits.max_depth = 2;
            s.limits.max_directives = 1;
        })
        .build()
        .await;
    app.create_tenant(SUB).await;
    let twenty: String = (0..20).map(|i| format!("t{i}: __typename ")).collect();
    assert_eq!(app.gql(&host(SUB), &format!("{{ {twenty} }}")).await.body["data"]["t19"], "Query");
    let refusals = [
        ("{ tenant { subdomain } me { id } storageUsage { usedBytes } }", "QUERY_TOO_MANY_ROOT_FIELDS", "rootFields", 3),
        ("{ a @skip(if: true) b @include(if: true) }", "QUERY_TOO_MANY_DIRECTIVES", "directives", 2),
        (&*format!("{{ {} }}", "__typename ".repeat(100)), "QUERY_TOO_MANY_TOKENS", "tokens", 102),
        ("{ a { b { c } } }", "QUERY_TOO_DEEP", "depth", 3),
    ];
    for (document, code, key, found) in refusals {
        let a = app.gql(&host(SUB), document).await;
        assert_eq!((a.code(), extension(&a, key)), (Some(code), &json!(found)), "{:?}", a.body);
    }
}

// --- The operation timeout ---------------------------------------------------

/// The answer came while another connection still held the row the
/// operation waited for: it was ended, not finished. Its first field had
/// written a client; once the row is free, that client is nowhere.
#[tokio::test]
async fn an_operation_past_its_timeout_is_ended_and_rolled_back_on_postgres() {
    let app = TestApp::builder(Backend::Postgres)
        .with_settings(|s| {
            s.limits.operation_timeout_ms = 1_000;
            s.database.lock_timeout_ms = 20_000;
        })
        .build()
        .await;
    let owner = app.sign_up(SUB).await;
    let h = host(SUB);
    let created = app.gql_as(&h, &owner.access, "mutation { createClient(input: { name: \"Acme\" }) { id } }").await;
    let id = created.body["data"]["createClient"]["id"].as_str().unwrap_or_else(|| panic!("{:?}", created.body)).to_owned();

    let mut locker = sqlx::PgConnection::connect(&app.pg.as_ref().unwrap().url).await.unwrap();
    let lock = format!("BEGIN; SELECT 1 FROM clients WHERE id = '{id}' FOR UPDATE");
    sqlx::raw_sql(AssertSqlSafe(lock)).execute(&mut locker).await.unwrap();
    let slow = format!(
        "mutation {{ a: createClient(input: {{ name: \"Timed out\" }}) {{ id }} b: updateClient(id: \"{id}\", input: {{ name: \"Renamed\" }}) {{ id }} }}"
    );
    let a = app.gql_as(&h, &owner.access, &slow).await;
    assert_eq!((a.status, a.code()), (504, Some("OPERATION_TIMEOUT")), "{:?}", a.body);
    assert_eq!(extension(&a, "timeoutMs"), 1_000);
    assert!(a.body.get("data").is_none() && a.headers.get("retry-after").is_none(), "{:?}", a.body);
    let ran: u64 = a.headers.get("x-aggios-sql-statements").unwrap().to_str().unwrap().parse().unwrap();
    assert!(ran >= 2, "the first field wrote before the second waited: {ran} statements");
    sqlx::raw_sql("ROLLBACK").execute(&mut locker).await.unwrap();

    // The row is free once the ended transaction has rolled back.
    let rename = format!("mutation {{ updateClient(id: \"{id}\", input: {{ name: \"Renamed later\" }}) {{ name }} }}");
    let mut renamed = app.gql_as(&h, &owner.access, &rename).await;
    for _ in 0..20 {
        if renamed.body["data"]["updateClient"]["name"] == "Renamed later" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        renamed = app.gql_as(&h, &owner.access, &rename).await;
    }
    assert_eq!(renamed.body["data"]["updateClient"]["name"], "Renamed later", "{:?}", renamed.body);
    let (clients,): (i64,) = sqlx::query_as("SELECT count(*) FROM clients WHERE name = 'Timed out'").fetch_one(&mut locker).await.unwrap();
    let (events,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit_events WHERE action = 'client.create'").fetch_one(&mut locker).await.unwrap();
    assert_eq!((clients, events), (0, 1), "only the first client and its event were committed");
    // No connection was left inside the ended transaction.
    let (open,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'")
            .fetch_one(&mut locker)
            .await
            .unwrap();
    assert_eq!(open, 0);
}

/// On SQLite a writer holds the writer's turn for its whole transaction: an
/// operation ended while it waited on storage (a server that accepts and
/// never answers) rolls back, and the next write gets the turn at once.
#[tokio::test]
async fn an_operation_past_its_timeout_rolls_back_and_passes_the_writer_turn_on_sqlite() {
    let s3 = s3();
    let relay = Relay::to(None, &s3).await;
    let port = relay.port;
    let app = TestApp::builder(Backend::Sqlite)
        .with_s3_endpoint(S3Endpoint { endpoint: format!("http://127.0.0.1:{port}"), ..s3.clone() })
        .with_settings(|s| s.limits.operation_timeout_ms = 1_000)
        .build()
        .await;
    let w = world(app, SUB).await;
    let bytes = pdf(1_000);
    let grant = "mutation($i: RequestDocumentUploadInput!) { requestDocumentUpload(input: $i) { url uploadToken } }";
    let input = json!({ "projectId": w.project, "name": "slow.pdf", "contentType": "application/pdf", "sizeBytes": bytes.len() });
    let g = w.app.gql_as_vars(&w.host, &w.owner.access, grant, json!({ "i": input })).await;
    let g = &g.body["data"]["requestDocumentUpload"];
    assert!((200..300).contains(&w.put(g["url"].as_str().unwrap(), "application/pdf", &bytes).await));
    let token = g["uploadToken"].as_str().unwrap().to_owned();

    relay.stop().await;
    let hole = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let holding = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = hole.accept().await {
            held.push(conn);
        }
    });

    let slow = "mutation($t: String!) { a: createClient(input: { name: \"Timed out\" }) { id } b: confirmDocumentUpload(uploadToken: $t) { id } }";
    let a = w.app.gql_as_vars(&w.host, &w.owner.access, slow, json!({ "t": token })).await;
    assert_eq!((a.status, a.code()), (504, Some("OPERATION_TIMEOUT")), "{:?}", a.body);

    let after = w.app.gql_as(&w.host, &w.owner.access, "mutation { createClient(input: { name: \"After\" }) { name } }").await;
    assert_eq!(after.body["data"]["createClient"]["name"], "After", "the writer's turn did not pass on: {:?}", after.body);
    let app = &w.app;
    let names = client_names(app, &w.owner).await;
    assert_eq!(names, ["Acme", "After"], "the ended operation's client was rolled back");
    assert_eq!(w.document_count().await, 0);
    holding.abort();
}
