//! `TestApp`: an application built on a fresh database, with an in-process
//! client. PostgreSQL tests get their own freshly migrated database, dropped
//! when the app is dropped; databases left by crashed runs are dropped on the
//! next run.

#![allow(dead_code)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use aggios::{
    config::{Settings, StorageBackend},
    http,
    state::AppState,
    store::tenants::{self, NewTenant},
    tenancy::Tenant,
};
use poem::{endpoint::BoxEndpoint, test::TestClient, EndpointExt as _};
use sea_orm::sqlx::{self, AssertSqlSafe, Connection as _, Executor as _, PgConnection};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::OnceCell;

pub const BASE: &str = "aggios.test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A required service's address from the environment, or a loud failure.
pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test.sh, which starts PostgreSQL, Redis and SeaweedFS and exports it")
    })
}

pub fn pg_admin_url() -> String {
    required_env("TEST_PG_URL")
}

pub fn redis_url() -> String {
    required_env("TEST_REDIS_URL")
}

#[derive(Debug, Clone)]
pub struct S3Endpoint {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

pub fn s3() -> S3Endpoint {
    S3Endpoint {
        endpoint: required_env("TEST_S3_ENDPOINT"),
        bucket: required_env("TEST_S3_BUCKET"),
        access_key: required_env("TEST_S3_ACCESS_KEY"),
        secret_key: required_env("TEST_S3_SECRET_KEY"),
    }
}

/// A PostgreSQL database of its own for one test.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    /// The server's administrator connection the database was made with.
    pub admin: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEPT: OnceCell<()> = OnceCell::const_new();

fn db_url(admin: &str, db: &str) -> String {
    let mut url = url::Url::parse(admin).expect("TEST_PG_URL is a URL");
    url.set_path(db);
    url.to_string()
}

impl TestDatabase {
    pub async fn create() -> Self {
        Self::create_on(pg_admin_url()).await
    }

    /// A database of its own on the server `admin` connects to.
    pub async fn create_on(admin: String) -> Self {
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at TEST_PG_URL ({admin}) is unreachable: {e}"));
        SWEPT.get_or_init(|| sweep_leftovers(&admin)).await;
        let name = format!("aggios_t_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        conn.execute(sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))).await.expect("create test database");
        Self { url: db_url(&admin, &name), name, admin }
    }
}

/// Drops test databases whose process is gone.
async fn sweep_leftovers(admin: &str) {
    let Ok(mut conn) = PgConnection::connect(admin).await else { return };
    let names: Vec<(String,)> = sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'aggios_t_%'")
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
    for (name,) in names {
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = conn.execute(sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))).await;
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs outside async: a thread of its own with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let _ = conn.execute(sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))).await;
                }
            });
        })
        .join();
    }
}

/// A change to the settings a test makes before the app starts.
type Tweak = Box<dyn FnOnce(&mut Settings)>;

pub struct TestAppBuilder {
    backend: Backend,
    /// On the PostgreSQL pair (TEST_PG_PAIR_*), reading from its replica.
    read_replica: bool,
    redis: Option<String>,
    s3: Option<S3Endpoint>,
    production: bool,
    tweaks: Vec<Tweak>,
}

impl TestAppBuilder {
    /// PostgreSQL on the test pair's primary, with `database.replica_urls`
    /// naming its streaming replica (`database.replica_max_lag_ms` as set).
    pub fn with_read_replica(mut self, max_lag_ms: u64) -> Self {
        self.read_replica = true;
        self.tweaks.push(Box::new(move |s| s.database.replica_max_lag_ms = max_lag_ms));
        self
    }

    pub fn with_redis(self) -> Self {
        self.with_redis_url(redis_url())
    }

    pub fn with_redis_url(mut self, url: String) -> Self {
        self.redis = Some(url);
        self
    }

    pub fn with_s3(self) -> Self {
        self.with_s3_endpoint(s3())
    }

    pub fn with_s3_endpoint(mut self, s3: S3Endpoint) -> Self {
        self.s3 = Some(s3);
        self
    }

    pub fn with_storage_url_ttl(mut self, secs: u64) -> Self {
        self.tweaks.push(Box::new(move |s| s.storage.url_ttl_secs = secs));
        self
    }

    pub fn with_max_file_bytes(mut self, bytes: u64) -> Self {
        self.tweaks.push(Box::new(move |s| s.storage.max_file_bytes = bytes));
        self
    }

    /// Rate-limit budgets (all off unless set here).
    pub fn with_rate_limits(mut self, set: impl FnOnce(&mut aggios::config::RateLimitSettings) + 'static) -> Self {
        self.tweaks.push(Box::new(move |s| set(&mut s.rate_limits)));
        self
    }

    /// Any other change to the settings before the app starts.
    pub fn with_settings(mut self, tweak: impl FnOnce(&mut Settings) + 'static) -> Self {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// How long a pooled connection, or on SQLite the writer's turn, is waited for.
    pub fn with_acquire_timeout(mut self, secs: u64) -> Self {
        self.tweaks.push(Box::new(move |s| s.database.acquire_timeout_secs = secs));
        self
    }

    pub fn production(mut self) -> Self {
        self.production = true;
        self
    }

    pub async fn build(self) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings { data_dir: dir.path().to_path_buf(), ..Settings::default() };
        settings.server.port = 0;
        settings.server.base_domain = BASE.into();
        // In-process requests come from 127.0.0.1; trusting it as a proxy
        // lets tests speak from several client addresses.
        settings.server.trusted_proxies = vec!["127.0.0.1".into()];
        // Tests create agencies and sign in from one address by the dozen:
        // no budget applies unless a test sets it (`with_rate_limits`).
        settings.rate_limits = aggios::config::RateLimitSettings::none();
        if self.production {
            settings.server.environment = aggios::config::Environment::Production;
        }
        let pg = match self.backend {
            Backend::Sqlite => None,
            Backend::Postgres if self.read_replica => {
                let db = TestDatabase::create_on(required_env("TEST_PG_PAIR_PRIMARY_URL")).await;
                settings.database.url = Some(db.url.clone().into());
                settings.database.migrate_on_start = Some(true);
                settings.database.replica_urls = vec![db_url(&required_env("TEST_PG_PAIR_REPLICA_URL"), &db.name).into()];
                Some(Arc::new(db))
            }
            Backend::Postgres => {
                let db = TestDatabase::create().await;
                settings.database.url = Some(db.url.clone().into());
                settings.database.migrate_on_start = Some(true);
                Some(Arc::new(db))
            }
        };
        if let Some(url) = self.redis {
            settings.redis.url = Some(url.into());
            settings.redis.key_prefix = format!("aggios-test-{}", uuid::Uuid::now_v7());
        }
        if let Some(s3) = self.s3 {
            settings.storage.backend = StorageBackend::S3;
            settings.storage.s3_endpoint = Some(s3.endpoint);
            settings.storage.s3_bucket = Some(s3.bucket);
            settings.storage.s3_access_key_id = Some(s3.access_key);
            settings.storage.s3_secret_access_key = Some(s3.secret_key.into());
        }
        for tweak in self.tweaks {
            tweak(&mut settings);
        }
        settings.validate().expect("test settings are valid");
        if self.production {
            // Production never invents keys: the operator provides them.
            aggios::auth::keyring::Keyring::generate(&settings.keyring_file()).expect("keyring");
        }
        let state = AppState::connect(settings.clone()).await.expect("the app starts");
        let client = TestClient::new(http::routes(state.clone()).boxed());
        TestApp { state, client, settings, pg, _dir: dir }
    }
}

pub struct TestApp {
    pub state: AppState,
    pub client: TestClient<BoxEndpoint<'static>>,
    pub settings: Settings,
    pub pg: Option<Arc<TestDatabase>>,
    _dir: TempDir,
}

/// A GraphQL answer: the HTTP status, headers and the JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: poem::http::HeaderMap,
    pub body: Value,
    /// The body as sent, byte for byte.
    pub raw: String,
}

impl Answer {
    pub fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }
}

impl TestApp {
    pub fn builder(backend: Backend) -> TestAppBuilder {
        TestAppBuilder { backend, read_replica: false, redis: None, s3: None, production: false, tweaks: Vec::new() }
    }

    pub async fn new(backend: Backend) -> Self {
        Self::builder(backend).build().await
    }

    pub async fn create_tenant(&self, subdomain: &str) -> Tenant {
        tenants::create(
            self.state.db.platform(),
            uuid::Uuid::now_v7(),
            NewTenant { name: format!("Agency {subdomain}"), subdomain: subdomain.into(), custom_domain: None },
        )
        .await
        .expect("tenant created")
        .into()
    }

    pub async fn create_tenant_with_domain(&self, subdomain: &str, domain: &str) -> Tenant {
        tenants::create(
            self.state.db.platform(),
            uuid::Uuid::now_v7(),
            NewTenant { name: format!("Agency {subdomain}"), subdomain: subdomain.into(), custom_domain: Some(domain.into()) },
        )
        .await
        .expect("tenant created")
        .into()
    }

    /// POSTs `query` to `/graphql` with `Host: host` and extra headers.
    pub async fn gql_with(&self, host: &str, headers: &[(&str, &str)], query: &str) -> Answer {
        self.gql_vars(host, headers, query, json!({})).await
    }

    pub async fn gql_vars(&self, host: &str, headers: &[(&str, &str)], query: &str, variables: Value) -> Answer {
        let mut req = self
            .client
            .post("/graphql")
            .header("host", host)
            .body_json(&json!({ "query": query, "variables": variables }));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        answer(req.send().await).await
    }

    pub async fn gql(&self, host: &str, query: &str) -> Answer {
        self.gql_with(host, &[], query).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        answer(self.client.get(path).send().await).await
    }
}

pub async fn answer(resp: poem::test::TestResponse) -> Answer {
    let status = resp.0.status().as_u16();
    let headers = resp.0.headers().clone();
    let bytes = resp.0.into_body().into_bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    Answer { status, headers, body, raw }
}

pub const PASSWORD: &str = "tundra velvet orbit 42";

pub fn host(sub: &str) -> String {
    format!("{sub}.{BASE}")
}

pub const API_HOST: &str = "api.aggios.test";

/// A signed-in user, as sign-up or login returned it.
#[derive(Debug, Clone)]
pub struct Signed {
    pub access: String,
    pub refresh: String,
    pub user_id: String,
    pub tenant_id: String,
    pub email: String,
}

impl Signed {
    fn from_payload(p: &Value) -> Self {
        let s = |v: &Value| v.as_str().unwrap_or_else(|| panic!("missing in {p}")).to_owned();
        Self {
            access: s(&p["accessToken"]),
            refresh: s(&p["refreshToken"]),
            user_id: s(&p["user"]["id"]),
            tenant_id: s(&p["tenant"]["id"]),
            email: s(&p["user"]["email"]),
        }
    }
}

pub const PAYLOAD: &str = "accessToken refreshToken user { id email role } tenant { id subdomain }";

impl TestApp {
    pub async fn gql_as(&self, host: &str, token: &str, query: &str) -> Answer {
        self.gql_with(host, &[("authorization", &format!("Bearer {token}"))], query).await
    }

    pub async fn gql_as_vars(&self, host: &str, token: &str, query: &str, variables: Value) -> Answer {
        self.gql_vars(host, &[("authorization", &format!("Bearer {token}"))], query, variables).await
    }

    /// A new agency `sub` and its owner `owner@{sub}.com`.
    pub async fn sign_up(&self, sub: &str) -> Signed {
        let a = self
            .gql_vars(
                API_HOST,
                &[],
                &format!("mutation($i: SignUpInput!) {{ signUp(input: $i) {{ {PAYLOAD} }} }}"),
                json!({ "i": {
                    "agencyName": format!("Agency {sub}"), "subdomain": sub, "email": format!("owner@{sub}.com"),
                    "password": PASSWORD, "firstName": "Olga", "lastName": "Owner",
                } }),
            )
            .await;
        Signed::from_payload(&a.body["data"]["signUp"])
    }

    pub async fn login(&self, sub: &str, email: &str, password: &str) -> Answer {
        self.gql_vars(
            &host(sub),
            &[],
            &format!("mutation($i: LoginInput!) {{ login(input: $i) {{ {PAYLOAD} }} }}"),
            json!({ "i": { "email": email, "password": password } }),
        )
        .await
    }

    pub async fn login_ok(&self, sub: &str, email: &str) -> Signed {
        let a = self.login(sub, email, PASSWORD).await;
        Signed::from_payload(&a.body["data"]["login"])
    }

    /// A user of `sub` with `role`, created by its owner, signed in.
    pub async fn add_user(&self, owner: &Signed, sub: &str, name: &str, role: &str) -> Signed {
        let email = format!("{name}@{sub}.com");
        let a = self
            .gql_as_vars(
                &host(sub),
                &owner.access,
                "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
                json!({ "i": { "email": email, "password": PASSWORD, "firstName": name, "lastName": "Test", "role": role } }),
            )
            .await;
        assert!(a.body["data"]["createUser"]["id"].is_string(), "{:?}", a.body);
        self.login_ok(sub, &email).await
    }

    /// An API key of `sub`: (the key, its id).
    pub async fn api_key(&self, owner: &Signed, sub: &str, scope: &str) -> (String, String) {
        let a = self
            .gql_as(
                &host(sub),
                &owner.access,
                &format!("mutation {{ createApiKey(input: {{ name: \"integration\", scope: {scope} }}) {{ secret apiKey {{ id }} }} }}"),
            )
            .await;
        let k = &a.body["data"]["createApiKey"];
        (k["secret"].as_str().unwrap_or_else(|| panic!("{:?}", a.body)).to_owned(), k["apiKey"]["id"].as_str().unwrap().to_owned())
    }

    /// When the API key `key_id` of `sub` was last used, as its owner sees
    /// it, waiting up to five seconds for the use to be recorded (it is
    /// written in the background).
    pub async fn key_last_used(&self, owner: &Signed, sub: &str, key_id: &str) -> Option<String> {
        for _ in 0..50 {
            let listed = self.gql_as(&host(sub), &owner.access, "{ apiKeys { id lastUsedAt } }").await;
            let keys = listed.body["data"]["apiKeys"].as_array().cloned().unwrap_or_else(|| panic!("{:?}", listed.body));
            let used = keys.iter().find(|k| k["id"] == key_id).and_then(|k| k["lastUsedAt"].as_str().map(str::to_owned));
            if used.is_some() {
                return used;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// A platform administrator, signed in: their access token.
    pub async fn platform_admin(&self) -> String {
        let email = format!("root-{}@aggios.test", uuid::Uuid::now_v7().simple());
        let hash = self.state.auth.passwords.hash(PASSWORD).await.unwrap();
        aggios::store::platform::create_admin(self.state.db.platform(), email.clone(), hash).await.unwrap();
        let a = self
            .gql_vars(
                API_HOST,
                &[],
                "mutation($e: String!, $p: String!) { platformLogin(email: $e, password: $p) { accessToken } }",
                json!({ "e": email, "p": PASSWORD }),
            )
            .await;
        a.body["data"]["platformLogin"]["accessToken"].as_str().unwrap_or_else(|| panic!("{:?}", a.body)).to_owned()
    }

    /// Another instance of the same deployment: same database, Redis, keys.
    pub async fn second_instance(&self) -> TestApp {
        self.second_instance_with(|_| {}).await
    }

    /// Another instance of the same deployment, its settings changed by `tweak`.
    pub async fn second_instance_with(&self, tweak: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = self.settings.clone();
        tweak(&mut settings);
        let state = AppState::connect(settings.clone()).await.expect("the second instance starts");
        let client = TestClient::new(http::routes(state.clone()).boxed());
        let dir = tempfile::tempdir().expect("temp dir");
        TestApp { state, client, settings, pg: self.pg.clone(), _dir: dir }
    }
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Waits until `addr` accepts TCP connections.
pub async fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// Runs one test body on each of several apps: `mod name { case, ... }`,
/// each case a test that builds its app with the given expression.
macro_rules! on_apps {
    ($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block $($case:ident => $make:expr),+) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(#[$meta])*
            async fn run($app: crate::helpers::TestApp) $body

            $(
                #[tokio::test]
                async fn $case() {
                    run($make.await).await
                }
            )+
        }
    };
}
pub(crate) use on_apps;

/// Runs the same test body on both backends: `mod name { sqlite, postgres }`.
macro_rules! on_both_backends {
    ($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block) => {
        crate::helpers::on_apps!($(#[$meta])* async fn $name($app) $body
            sqlite => crate::helpers::TestApp::new(crate::helpers::Backend::Sqlite),
            postgres => crate::helpers::TestApp::new(crate::helpers::Backend::Postgres));
    };
}
pub(crate) use on_both_backends;

/// Runs the same test body on the SQLite and local-files default and on
/// PostgreSQL with S3: `mod name { local, s3 }`.
macro_rules! on_local_and_s3 {
    ($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block) => {
        crate::helpers::on_apps!($(#[$meta])* async fn $name($app) $body
            local => crate::helpers::TestApp::new(crate::helpers::Backend::Sqlite),
            s3 => crate::helpers::TestApp::builder(crate::helpers::Backend::Postgres).with_s3().build());
    };
}
pub(crate) use on_local_and_s3;

/// A TCP relay in front of the real S3 server: stopping it makes the server
/// unreachable for one test's app alone. With a budget, it cuts every
/// connection once that many bytes have gone upstream (storage failing in
/// the middle of an upload).
pub struct Relay {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub async fn start(budget: Option<u64>, target: String) -> Self {
        Self::start_on(0, budget, target).await
    }

    /// On a given port (0: any), e.g. to come back where a stopped relay was.
    pub async fn start_on(port: u16, budget: Option<u64>, target: String) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let left = Arc::new(std::sync::atomic::AtomicU64::new(budget.unwrap_or(u64::MAX)));
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                let (target, left) = (target.clone(), left.clone());
                conns.spawn(async move {
                    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                    let Ok(outbound) = tokio::net::TcpStream::connect(target).await else { return };
                    let (mut ir, mut iw) = inbound.into_split();
                    let (mut or, mut ow) = outbound.into_split();
                    let up = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match ir.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            let before = left.fetch_sub((n as u64).min(left.load(Ordering::SeqCst)), Ordering::SeqCst);
                            if before < n as u64 {
                                return;
                            }
                            if ow.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    let down = async {
                        let _ = tokio::io::copy(&mut or, &mut iw).await;
                    };
                    tokio::select! { () = up => {}, () = down => {} }
                });
            }
        });
        Self { port, task }
    }

    pub fn to(budget: Option<u64>, s3: &S3Endpoint) -> impl Future<Output = Self> {
        let target = url::Url::parse(&s3.endpoint).unwrap();
        Self::start(budget, format!("{}:{}", target.host_str().unwrap(), target.port().unwrap_or(80)))
    }

    /// Stops listening and cuts every relayed connection.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One file of a multipart request: the variable path it fills, its name,
/// declared content type and bytes.
pub struct FilePart<'a> {
    pub path: &'a str,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

/// A body following the GraphQL multipart request spec, and its content type.
pub fn multipart_body(query: &str, variables: &Value, files: &[FilePart<'_>]) -> (Vec<u8>, String) {
    let boundary = format!("aggios-test-{}", uuid::Uuid::now_v7().simple());
    let mut body = Vec::new();
    let mut part = |headers: String, bytes: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    };
    let ops = json!({ "query": query, "variables": variables }).to_string();
    part("Content-Disposition: form-data; name=\"operations\"".into(), ops.as_bytes());
    let map: serde_json::Map<String, Value> =
        files.iter().enumerate().map(|(i, f)| (i.to_string(), json!([f.path]))).collect();
    part("Content-Disposition: form-data; name=\"map\"".into(), Value::Object(map).to_string().as_bytes());
    for (i, f) in files.iter().enumerate() {
        part(
            format!("Content-Disposition: form-data; name=\"{i}\"; filename=\"{}\"\r\nContent-Type: {}", f.filename, f.content_type),
            f.bytes,
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

impl TestApp {
    /// POSTs a multipart GraphQL request as `token` on `host`, with the
    /// header apollo-upload-client is configured to send (a multipart body
    /// needs it: see `http::csrf`).
    pub async fn gql_upload(&self, host: &str, token: &str, query: &str, variables: Value, files: &[FilePart<'_>]) -> Answer {
        let (body, content_type) = multipart_body(query, &variables, files);
        let resp = self
            .client
            .post("/graphql")
            .header("host", host)
            .header("authorization", format!("Bearer {token}"))
            .header("apollo-require-preflight", "true")
            .header("content-type", content_type)
            .body(body)
            .send()
            .await;
        answer(resp).await
    }

    /// Fetches a download link: an absolute (presigned) URL from the S3
    /// server, or a path on this app. Returns the status and the bytes.
    pub async fn fetch(&self, host: &str, url: &str) -> (u16, Vec<u8>) {
        if url.starts_with("http") {
            let resp = reqwest::get(url).await.expect("S3 answers");
            let status = resp.status().as_u16();
            (status, resp.bytes().await.expect("body").to_vec())
        } else {
            let resp = self.client.get(url).header("host", host).send().await;
            let status = resp.0.status().as_u16();
            (status, resp.0.into_body().into_bytes().await.expect("body").to_vec())
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A `TestApp`'s routes served on a real loopback socket (for WebSockets),
/// until dropped.
pub struct Listening {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestApp {
    pub async fn listen(&self) -> Listening {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let limits = http::server::Limits::from_settings(&self.settings.server);
        let routes = http::routes(self.state.clone()).boxed();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let stopping = self.state.stopping.clone();
        tokio::spawn(http::server::serve(listener, routes, limits, async move {
            let _ = rx.await;
            stopping.cancel();
        }));
        Listening { port, stop: Some(tx) }
    }
}

/// Held exclusively by a test that breaks every pub/sub subscription of the
/// shared Redis (`CLIENT KILL TYPE pubsub`), and shared by the tests whose
/// live sockets such a break would close: they never overlap.
pub static SHARED_PUBSUB: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());
