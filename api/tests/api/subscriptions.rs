//! GraphQL subscriptions over WebSocket (graphql-transport-ws), from a real
//! socket: changes made through one instance reach subscribers of another
//! through Redis, only after commit, only within their agency and role;
//! access that ends closes the socket; the protocol's refusals and limits.

use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest as _},
};

use crate::helpers::*;

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

struct Ws {
    socket: Socket,
}

/// How a socket ended: its close code and reason (1006 when it just dropped).
type Closed = (u16, String);

impl Ws {
    async fn open(port: u16, sub: &str, protocol: Option<&str>, origin: Option<&str>) -> Self {
        let mut req = format!("ws://127.0.0.1:{port}/graphql").into_client_request().unwrap();
        let h = req.headers_mut();
        h.insert("host", host(sub).parse().unwrap());
        if let Some(p) = protocol {
            h.insert("sec-websocket-protocol", p.parse().unwrap());
        }
        if let Some(o) = origin {
            h.insert("origin", o.parse().unwrap());
        }
        let (socket, _) = tokio_tungstenite::connect_async(req).await.expect("the upgrade is accepted");
        Self { socket }
    }

    /// Opened and acknowledged with `payload` as connection_init's.
    async fn connected(port: u16, sub: &str, payload: Value) -> Result<Self, Closed> {
        let mut ws = Self::open(port, sub, Some("graphql-transport-ws"), None).await;
        ws.send(json!({ "type": "connection_init", "payload": payload })).await;
        match ws.next(Duration::from_secs(5)).await {
            Ok(m) if m["type"] == "connection_ack" => Ok(ws),
            Ok(m) => panic!("expected connection_ack, got {m}"),
            Err(closed) => Err(closed),
        }
    }

    async fn as_user(port: u16, sub: &str, token: &str) -> Self {
        Self::connected(port, sub, json!({ "authorization": format!("Bearer {token}") })).await.expect("connected")
    }

    async fn send(&mut self, v: Value) {
        let _ = self.socket.send(Message::Text(v.to_string().into())).await;
    }

    async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } })).await;
    }

    /// The next protocol message within `limit` (pings answered), or how
    /// the socket closed.
    async fn next(&mut self, limit: Duration) -> Result<Value, Closed> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.socket.next()).await {
                Err(_) => return Ok(Value::Null),
                Ok(None | Some(Err(_))) => return Err((1006, String::new())),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Err(frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new())));
                }
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return Ok(v);
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Every `next` payload that arrives within `limit`, by subscription id.
    async fn collect(&mut self, limit: Duration) -> Vec<(String, Value)> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        while let Ok(m) = self.next(deadline.saturating_duration_since(Instant::now())).await {
            if m.is_null() {
                break;
            }
            assert_eq!(m["type"], "next", "{m}");
            got.push((m["id"].as_str().unwrap().to_owned(), m["payload"].clone()));
        }
        got
    }

    /// How the socket closes within `limit`; `None` if it stays open.
    async fn closed(&mut self, limit: Duration) -> Option<Closed> {
        let deadline = Instant::now() + limit;
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())).await {
                Err(closed) => return Some(closed),
                Ok(Value::Null) => return None,
                Ok(_) => {}
            }
        }
    }
}

const DOCUMENTS: &str = "subscription($p: ID) { documentChanged(projectId: $p) { kind documentId projectId clientId version document { name project { name } } } }";
const CLIENTS: &str = "subscription { clientChanged { kind clientId client { name } } }";
const CREATE_CLIENT: &str = "mutation($n: String!) { createClient(input: { name: $n }) { id } }";
const CREATE_PROJECT: &str = "mutation($c: ID!, $n: String!) { createProject(input: { clientId: $c, name: $n }) { id } }";

async fn create_client(app: &TestApp, sub: &str, token: &str, name: &str) -> String {
    let a = app.gql_as_vars(&host(sub), token, CREATE_CLIENT, json!({ "n": name })).await;
    a.body["data"]["createClient"]["id"].as_str().unwrap_or_else(|| panic!("{:?}", a.body)).to_owned()
}

async fn create_project(app: &TestApp, sub: &str, token: &str, client: &str, name: &str) -> String {
    let a = app.gql_as_vars(&host(sub), token, CREATE_PROJECT, json!({ "c": client, "n": name })).await;
    a.body["data"]["createProject"]["id"].as_str().unwrap_or_else(|| panic!("{:?}", a.body)).to_owned()
}

async fn upload(app: &TestApp, sub: &str, token: &str, project: &str, name: &str) -> String {
    let file = FilePart { path: "variables.input.file", filename: name, content_type: "text/plain", bytes: b"live bytes\n" };
    let a = app.gql_upload(&host(sub), token, crate::files::UPLOAD, json!({ "input": { "projectId": project, "name": name, "file": null } }), &[file]).await;
    a.body["data"]["uploadDocument"]["id"].as_str().unwrap_or_else(|| panic!("{:?}", a.body)).to_owned()
}

/// Lets a new subscription's registration land before changes are made.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn two_agencies_changing_the_same_kinds_at_once_each_hear_only_their_own_through_another_instance() {
    let _shared = SHARED_PUBSUB.read().await;
    let app = TestApp::builder(Backend::Postgres).with_redis().build().await;
    let other = app.second_instance().await;
    let served = other.listen().await;
    let agencies = ["acme", "zeta"];
    let mut owners = Vec::new();
    let mut sockets = Vec::new();
    for sub in agencies {
        let owner = app.sign_up(sub).await;
        let mut ws = Ws::as_user(served.port, sub, &owner.access).await;
        ws.subscribe("docs", DOCUMENTS, json!({})).await;
        ws.subscribe("clients", CLIENTS, json!({})).await;
        owners.push(owner);
        sockets.push(ws);
    }
    settle().await;
    // Both agencies make the same kinds of change at the same time, on the first instance.
    let made = futures::future::join_all(agencies.iter().zip(&owners).map(|(sub, owner)| {
        let app = &app;
        async move {
            let client = create_client(app, sub, &owner.access, &format!("{sub} client")).await;
            let project = create_project(app, sub, &owner.access, &client, &format!("{sub} project")).await;
            let doc = upload(app, sub, &owner.access, &project, &format!("{sub}-brief.txt")).await;
            (client, project, doc)
        }
    }))
    .await;
    for ((sub, ws), (client, project, doc)) in agencies.iter().zip(&mut sockets).zip(&made) {
        let got = ws.collect(Duration::from_secs(3)).await;
        assert_eq!(got.len(), 2, "{sub}: {got:?}");
        let (_, clients) = got.iter().find(|(id, _)| id == "clients").expect("the client event");
        let c = &clients["data"]["clientChanged"];
        assert_eq!((c["kind"].as_str(), c["clientId"].as_str(), c["client"]["name"].as_str()), (Some("CREATED"), Some(client.as_str()), Some(&*format!("{sub} client"))));
        let (_, docs) = got.iter().find(|(id, _)| id == "docs").expect("the upload's event");
        let d = &docs["data"]["documentChanged"];
        assert_eq!(d["kind"], "CREATED");
        assert_eq!(d["documentId"], doc.as_str());
        assert_eq!(d["projectId"], project.as_str());
        assert_eq!(d["clientId"], client.as_str(), "a project's document belongs to its client");
        assert_eq!(d["version"], 1);
        assert_eq!(d["document"]["name"], format!("{sub}-brief.txt"));
        assert_eq!(d["document"]["project"]["name"], format!("{sub} project"));
    }
}

#[tokio::test]
async fn a_rolled_back_change_is_never_published_and_a_filter_keeps_to_its_project() {
    let _shared = SHARED_PUBSUB.read().await;
    let app = TestApp::builder(Backend::Postgres).with_redis().build().await;
    let served = app.listen().await;
    let owner = app.sign_up("acme").await;
    let client = create_client(&app, "acme", &owner.access, "Client").await;
    let (p1, p2) = (
        create_project(&app, "acme", &owner.access, &client, "One").await,
        create_project(&app, "acme", &owner.access, &client, "Two").await,
    );
    let mut ws = Ws::as_user(served.port, "acme", &owner.access).await;
    ws.subscribe("clients", CLIENTS, json!({})).await;
    ws.subscribe("p2", DOCUMENTS, json!({ "p": p2 })).await;
    settle().await;
    // The first root field creates a client, the second fails: the
    // operation's transaction rolls back, and its change with it.
    let a = app
        .gql_as(&host("acme"), &owner.access, "mutation { a: createClient(input: { name: \"Ghost\" }) { id } b: deleteClient(id: \"00000000-0000-7000-8000-000000000000\") }")
        .await;
    assert_eq!(a.code(), Some("NOT_FOUND"), "{:?}", a.body);
    upload(&app, "acme", &owner.access, &p1, "one.txt").await;
    let in_two = upload(&app, "acme", &owner.access, &p2, "two.txt").await;
    create_client(&app, "acme", &owner.access, "Real").await;
    let got = ws.collect(Duration::from_secs(2)).await;
    let names: Vec<(&str, &Value)> = got.iter().map(|(id, p)| (id.as_str(), p)).collect();
    assert_eq!(names.len(), 2, "{got:?}");
    assert_eq!(names[0].0, "p2");
    assert_eq!(names[0].1["data"]["documentChanged"]["documentId"], in_two.as_str(), "only project Two's upload");
    assert_eq!(names[1].1["data"]["clientChanged"]["client"]["name"], "Real", "the rolled-back client was heard: {got:?}");
}

#[tokio::test]
async fn the_audit_feed_is_for_owners_and_admins_and_a_member_is_refused_with_forbidden() {
    let _shared = SHARED_PUBSUB.read().await;
    let app = TestApp::builder(Backend::Postgres).with_redis().build().await;
    let served = app.listen().await;
    let owner = app.sign_up("acme").await;
    let member = app.add_user(&owner, "acme", "mia", "MEMBER").await;
    let feed = "subscription { auditEventRecorded { action targetType targetId } }";
    let mut as_member = Ws::as_user(served.port, "acme", &member.access).await;
    as_member.subscribe("a", feed, json!({})).await;
    let refused = as_member.next(Duration::from_secs(3)).await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "FORBIDDEN", "{refused}");
    let mut as_owner = Ws::as_user(served.port, "acme", &owner.access).await;
    as_owner.subscribe("a", feed, json!({})).await;
    settle().await;
    let client = create_client(&app, "acme", &member.access, "Audited").await;
    let got = as_owner.collect(Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let e = &got[0].1["data"]["auditEventRecorded"];
    assert_eq!((e["action"].as_str(), e["targetId"].as_str()), (Some("client.create"), Some(client.as_str())));
    // Nothing reached the member's socket meanwhile.
    assert!(as_member.collect(Duration::from_millis(200)).await.is_empty());
}

#[tokio::test]
async fn a_logout_through_one_instance_closes_that_sessions_sockets_on_the_other() {
    let _shared = SHARED_PUBSUB.read().await;
    let app = TestApp::builder(Backend::Postgres).with_redis().build().await;
    let other = app.second_instance().await;
    let served = other.listen().await;
    let owner = app.sign_up("acme").await;
    let member = app.add_user(&owner, "acme", "mia", "MEMBER").await;
    let mut owners = Ws::as_user(served.port, "acme", &owner.access).await;
    let mut members = Ws::as_user(served.port, "acme", &member.access).await;
    assert_eq!(app.gql_as(&host("acme"), &owner.access, "mutation { logout }").await.body["data"]["logout"], true);
    let started = Instant::now();
    let closed = owners.closed(Duration::from_secs(4)).await.expect("the logged-out session's socket stays open");
    assert_eq!(closed.0, 4403, "{closed:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "closed after {:?}", started.elapsed());
    assert_eq!(members.closed(Duration::from_millis(300)).await, None, "another user's socket was closed");
    // Deactivating the member closes theirs too.
    let owner = app.login_ok("acme", "owner@acme.com").await;
    let a = app.gql_as_vars(&host("acme"), &owner.access, "mutation($id: ID!) { deactivateUser(id: $id) { id } }", json!({ "id": member.user_id })).await;
    assert!(a.body["data"]["deactivateUser"]["id"].is_string(), "{:?}", a.body);
    assert_eq!(members.closed(Duration::from_secs(4)).await.map(|c| c.0), Some(4403));
}

#[tokio::test]
async fn an_expired_access_token_closes_its_socket_and_cannot_connect_again() {
    let app = TestApp::builder(Backend::Sqlite).with_settings(|s| s.auth.access_token_ttl_secs = 2).build().await;
    let served = app.listen().await;
    let owner = app.sign_up("acme").await;
    let mut ws = Ws::as_user(served.port, "acme", &owner.access).await;
    let started = Instant::now();
    let closed = ws.closed(Duration::from_secs(5)).await.expect("the socket outlived its token");
    assert_eq!(closed.0, 4403, "{closed:?}");
    assert!(closed.1.contains("expired"), "{closed:?}");
    assert!(started.elapsed() <= Duration::from_secs(3), "closed after {:?}", started.elapsed());
    let again = Ws::connected(served.port, "acme", json!({ "authorization": format!("Bearer {}", owner.access) })).await.err();
    assert_eq!(again.as_ref().map(|c| c.0), Some(4403));
    assert!(again.unwrap().1.contains("expired"));
}

#[tokio::test]
async fn the_handshake_refuses_what_http_would_with_the_protocols_close_codes() {
    let app = TestApp::builder(Backend::Sqlite)
        .with_settings(|s| s.server.cors_allowed_origins = vec!["https://app.example.com".into()])
        .build()
        .await;
    let served = app.listen().await;
    let acme = app.sign_up("acme").await;
    app.sign_up("zeta").await;
    let code = |r: Result<Ws, Closed>| r.err().map(|c| c.0);
    assert_eq!(code(Ws::connected(served.port, "acme", json!({})).await), Some(4403), "no credential");
    assert_eq!(code(Ws::connected(served.port, "acme", json!({ "authorization": "Bearer garbage" })).await), Some(4403));
    assert_eq!(
        code(Ws::connected(served.port, "zeta", json!({ "authorization": format!("Bearer {}", acme.access) })).await),
        Some(4403),
        "another agency's token"
    );
    let (key, _) = app.api_key(&acme, "acme", "READ").await;
    let mut by_key = Ws::connected(served.port, "acme", json!({ "apiKey": key })).await.expect("an API key connects");
    by_key.subscribe("c", CLIENTS, json!({})).await;
    assert_eq!(by_key.next(Duration::from_millis(300)).await, Ok(Value::Null), "no error for a key's subscription");
    // A query over the socket is told to use HTTP.
    by_key.subscribe("q", "{ __typename }", json!({})).await;
    let refused = by_key.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!((refused["type"].as_str(), refused["payload"][0]["extensions"]["code"].as_str()), (Some("error"), Some("METHOD_NOT_ALLOWED")), "{refused}");
    // A page of another origin: refused; the allowed one and the server's own connect.
    for (origin, ok) in [("https://evil.example", false), ("https://app.example.com", true), (&*format!("http://{}", host("acme")), true)] {
        let mut ws = Ws::open(served.port, "acme", Some("graphql-transport-ws"), Some(origin)).await;
        ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", acme.access) } })).await;
        let first = ws.next(Duration::from_secs(3)).await;
        assert_eq!(first.as_ref().map(|m| m["type"] == "connection_ack").map_err(|c| c.0), if ok { Ok(true) } else { Err(4403) }, "{origin}");
    }
    // On the API host (the playground's), connection_init names the agency.
    let on_api = |payload: Value| async move {
        let mut req = format!("ws://127.0.0.1:{}/graphql", served.port).into_client_request().unwrap();
        req.headers_mut().insert("host", API_HOST.parse().unwrap());
        req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
        let mut ws = Ws { socket: tokio_tungstenite::connect_async(req).await.unwrap().0 };
        ws.send(json!({ "type": "connection_init", "payload": payload })).await;
        ws.next(Duration::from_secs(3)).await.map(|m| m["type"].as_str().map(str::to_owned)).map_err(|c| c.0)
    };
    let bearer = format!("Bearer {}", acme.access);
    assert_eq!(on_api(json!({ "authorization": bearer, "x-tenant": "acme" })).await, Ok(Some("connection_ack".into())));
    assert_eq!(on_api(json!({ "authorization": bearer })).await, Err(4403), "no agency named");
    assert_eq!(on_api(json!({ "authorization": bearer, "x-tenant": "zeta" })).await, Err(4403), "another agency named");
    // No subprotocol: 4406. Subscribe before the ack: 4401. Garbage: 4400.
    let mut ws = Ws::open(served.port, "acme", None, None).await;
    assert_eq!(ws.closed(Duration::from_secs(2)).await.map(|c| c.0), Some(4406));
    let mut ws = Ws::open(served.port, "acme", Some("graphql-transport-ws"), None).await;
    ws.subscribe("x", CLIENTS, json!({})).await;
    assert_eq!(ws.closed(Duration::from_secs(2)).await.map(|c| c.0), Some(4401));
    let mut ws = Ws::as_user(served.port, "acme", &acme.access).await;
    ws.send(json!({ "type": "subscribe" })).await;
    assert_eq!(ws.closed(Duration::from_secs(2)).await.map(|c| c.0), Some(4400));
    // An unknown agency's host is refused before any upgrade.
    let req = {
        let mut r = format!("ws://127.0.0.1:{}/graphql", served.port).into_client_request().unwrap();
        r.headers_mut().insert("host", host("nobody").parse().unwrap());
        r.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
        r
    };
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 404),
        other => panic!("expected a 404, got {:?}", other.map(|(_, r)| r.status())),
    }
}

#[tokio::test]
async fn limits_hold_subscriptions_per_connection_connections_per_user_and_message_size() {
    let app = TestApp::builder(Backend::Sqlite)
        .with_settings(|s| {
            s.subscriptions.max_per_connection = 2;
            s.subscriptions.max_connections_per_user = 2;
            s.subscriptions.max_message_bytes = 2048;
        })
        .build()
        .await;
    let served = app.listen().await;
    let owner = app.sign_up("acme").await;
    let mut ws = Ws::as_user(served.port, "acme", &owner.access).await;
    for id in ["1", "2", "3"] {
        ws.subscribe(id, CLIENTS, json!({})).await;
    }
    let refused = ws.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!((refused["type"].as_str(), refused["id"].as_str()), (Some("error"), Some("3")), "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "TOO_MANY_SUBSCRIPTIONS");
    // A duplicate id closes the connection (4409).
    ws.subscribe("1", CLIENTS, json!({})).await;
    assert_eq!(ws.closed(Duration::from_secs(2)).await.map(|c| c.0), Some(4409));
    // Two connections at once are allowed, a third is not; a closed one frees its place.
    let a = Ws::as_user(served.port, "acme", &owner.access).await;
    let mut b = Ws::as_user(served.port, "acme", &owner.access).await;
    let third = Ws::connected(served.port, "acme", json!({ "authorization": format!("Bearer {}", owner.access) })).await.err();
    assert_eq!(third.map(|c| c.0), Some(1013));
    drop(a);
    let mut freed = None;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Ok(ws) = Ws::connected(served.port, "acme", json!({ "authorization": format!("Bearer {}", owner.access) })).await {
            freed = Some(ws);
            break;
        }
    }
    assert!(freed.is_some(), "a closed connection kept its place");
    // A message over the limit ends the connection.
    b.send(json!({ "type": "ping", "payload": { "pad": "x".repeat(4096) } })).await;
    assert!(b.closed(Duration::from_secs(2)).await.is_some(), "an oversized message was taken");
}

#[tokio::test]
async fn an_idle_subscription_holds_no_connection_and_an_event_runs_in_a_short_transaction() {
    let _shared = SHARED_PUBSUB.read().await;
    let app = TestApp::builder(Backend::Postgres).with_redis().build().await;
    let served = app.listen().await;
    let owner = app.sign_up("acme").await;
    let mut sockets = Vec::new();
    for _ in 0..20 {
        let mut ws = Ws::as_user(served.port, "acme", &owner.access).await;
        ws.subscribe("c", CLIENTS, json!({})).await;
        sockets.push(ws);
    }
    settle().await;
    create_client(&app, "acme", &owner.access, "Seen").await;
    for ws in &mut sockets {
        let got = ws.collect(Duration::from_millis(1500)).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1["data"]["clientChanged"]["client"]["name"], "Seen");
    }
    let db = app.pg.as_ref().unwrap();
    let mut admin = <sea_orm::sqlx::PgConnection as sea_orm::sqlx::Connection>::connect(&pg_admin_url()).await.unwrap();
    let busy: i64 = sea_orm::sqlx::query_scalar(
        "select count(*) from pg_stat_activity where datname = $1 and state in ('active', 'idle in transaction') and pid <> pg_backend_pid()",
    )
    .bind(&db.name)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(busy, 0, "20 idle subscribers hold database work");
}

#[tokio::test]
async fn on_the_embedded_default_a_change_reaches_a_subscriber_in_process() {
    let app = TestApp::builder(Backend::Sqlite).build().await;
    let served = app.listen().await;
    let owner = app.sign_up("acme").await;
    let mut ws = Ws::as_user(served.port, "acme", &owner.access).await;
    ws.subscribe("c", "subscription { clientChanged { kind client { name } } }", json!({})).await;
    settle().await;
    let id = create_client(&app, "acme", &owner.access, "Local").await;
    // An event shows the object as it is when delivered: the deletion waits
    // for the creation's event, or that would show it gone.
    let created = ws.next(Duration::from_secs(3)).await.unwrap();
    assert_eq!(created["payload"]["data"]["clientChanged"], json!({ "kind": "CREATED", "client": { "name": "Local" } }), "{created}");
    app.gql_as_vars(&host("acme"), &owner.access, "mutation($id: ID!) { deleteClient(id: $id) }", json!({ "id": id })).await;
    let got = ws.collect(Duration::from_secs(2)).await;
    let kinds: Vec<(&str, &Value)> = got.iter().map(|(_, p)| (p["data"]["clientChanged"]["kind"].as_str().unwrap(), &p["data"]["clientChanged"]["client"])).collect();
    assert_eq!(kinds, vec![("DELETED", &Value::Null)], "{got:?}");
}

#[tokio::test]
async fn revoking_an_api_key_or_deactivating_the_agency_closes_their_sockets_on_another_instance() {
    let _shared = SHARED_PUBSUB.read().await;
    let app = TestApp::builder(Backend::Postgres).with_redis().build().await;
    let other = app.second_instance().await;
    let served = other.listen().await;
    let owner = app.sign_up("acme").await;
    let (key, key_id) = app.api_key(&owner, "acme", "READ").await;
    let mut by_key = Ws::connected(served.port, "acme", json!({ "apiKey": key })).await.expect("the key connects");
    let mut by_owner = Ws::as_user(served.port, "acme", &owner.access).await;
    let a = app.gql_as_vars(&host("acme"), &owner.access, "mutation($id: ID!) { revokeApiKey(id: $id) }", json!({ "id": key_id })).await;
    assert_eq!(a.body["data"]["revokeApiKey"], true, "{:?}", a.body);
    let started = Instant::now();
    let closed = by_key.closed(Duration::from_secs(4)).await.expect("the revoked key's socket stays open");
    assert_eq!(closed.0, 4403, "{closed:?}");
    // The revocation's audit event sends the other instance to read its keys again at once.
    assert!(started.elapsed() < Duration::from_secs(2), "closed after {:?}", started.elapsed());
    assert_eq!(by_owner.closed(Duration::from_millis(200)).await, None);
    let admin = app.platform_admin().await;
    let d = app.gql_as(API_HOST, &admin, &format!("mutation {{ deactivateTenant(id: \"{}\") {{ isActive }} }}", owner.tenant_id)).await;
    assert_eq!(d.body["data"]["deactivateTenant"]["isActive"], false, "{:?}", d.body);
    let started = Instant::now();
    assert_eq!(by_owner.closed(Duration::from_secs(4)).await.map(|c| c.0), Some(4403));
    assert!(started.elapsed() < Duration::from_secs(3), "closed after {:?}", started.elapsed());
}

#[tokio::test]
async fn a_stopping_server_closes_its_sockets_with_1012_so_that_clients_connect_elsewhere() {
    let app = TestApp::builder(Backend::Sqlite).build().await;
    let served = app.listen().await;
    let owner = app.sign_up("acme").await;
    let mut ws = Ws::as_user(served.port, "acme", &owner.access).await;
    ws.subscribe("c", CLIENTS, json!({})).await;
    settle().await;
    drop(served);
    let closed = ws.closed(Duration::from_secs(3)).await.expect("the socket outlived the server's stop");
    assert_eq!(closed.0, 1012, "{closed:?}");
}

#[tokio::test]
async fn a_replica_whose_bus_subscription_broke_closes_its_sockets_so_that_clients_refetch() {
    let _alone = SHARED_PUBSUB.write().await;
    let app = TestApp::builder(Backend::Postgres).with_redis().build().await;
    let served = app.listen().await;
    let owner = app.sign_up("acme").await;
    let mut ws = Ws::as_user(served.port, "acme", &owner.access).await;
    ws.subscribe("c", CLIENTS, json!({})).await;
    settle().await;
    // Changes made elsewhere while the subscription is down would be missed.
    let mut conn = redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: redis::Value = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut conn).await.unwrap();
    let closed = ws.closed(Duration::from_secs(3)).await.expect("the socket stayed open on a replica that may miss events");
    assert_eq!(closed.0, 1013, "{closed:?}");
    assert!(closed.1.contains("refetch"), "{closed:?}");
    // Connecting again works, and hears changes again once the bus is back.
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.state.cache.bus().live_since().is_none() {
        assert!(Instant::now() < deadline, "the bus did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut again = Ws::as_user(served.port, "acme", &owner.access).await;
    again.subscribe("c", CLIENTS, json!({})).await;
    settle().await;
    create_client(&app, "acme", &owner.access, "After").await;
    let got = again.collect(Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1, "{got:?}");
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_closed_rather_than_buffered_and_the_others_get_everything() {
    let app = TestApp::builder(Backend::Sqlite).with_settings(|s| s.subscriptions.max_queued_messages = 4).build().await;
    let served = app.listen().await;
    let owner = app.sign_up("acme").await;
    let notes = "n".repeat(9_990);
    let id = create_client(&app, "acme", &owner.access, "Big").await;
    // 15 aliases of a 10 kB field: each event is ~150 kB on the wire.
    let fields: String = (0..15).map(|i| format!(" a{i}: notes")).collect();
    let query = format!("subscription {{ clientChanged {{ kind client {{{fields} }} }} }}");
    let mut stalled = Ws::as_user(served.port, "acme", &owner.access).await;
    let mut healthy = Ws::as_user(served.port, "acme", &owner.access).await;
    stalled.subscribe("s", &query, json!({})).await;
    healthy.subscribe("h", &query, json!({})).await;
    settle().await;
    let events = 60;
    let reader = tokio::spawn(async move {
        let (mut got, deadline) = (0, Instant::now() + Duration::from_secs(20));
        while got < events && Instant::now() < deadline {
            match healthy.next(deadline.saturating_duration_since(Instant::now())).await {
                Ok(m) if m["type"] == "next" => got += 1,
                Ok(_) => {}
                Err(closed) => panic!("the reading subscriber was closed: {closed:?}"),
            }
        }
        got
    });
    for i in 0..events {
        let a = app
            .gql_as_vars(&host("acme"), &owner.access, "mutation($id: ID!, $n: String!) { updateClient(id: $id, input: { notes: $n }) { id } }", json!({ "id": id, "n": format!("{i}{notes}") }))
            .await;
        assert!(a.body["data"]["updateClient"]["id"].is_string(), "{:?}", a.body);
    }
    assert_eq!(reader.await.unwrap(), events, "a subscriber that reads got every event");
    // The stalled one now reads what the kernel held, then finds its socket ended by the server.
    let mut got = 0;
    let ended = loop {
        match stalled.next(Duration::from_secs(5)).await {
            Ok(Value::Null) => break None,
            Ok(_) => got += 1,
            Err(closed) => break Some(closed),
        }
    };
    let ended = ended.expect("the server kept a socket that stopped reading");
    // 1013 when the close frame fits behind what the kernel holds, else the connection is just dropped.
    assert!(ended.0 == 1013 || ended.0 == 1006, "{ended:?}");
    eprintln!("the stalled socket read {got} of {events} events, then ended with {ended:?}");
    assert!(got < events, "all {got} events were buffered for a socket that stopped reading");
}
