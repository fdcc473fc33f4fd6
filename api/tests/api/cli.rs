//! The binary: configuration errors stop start-up naming the setting, and
//! SIGTERM stops the server cleanly.

use std::{process::Stdio, time::Duration};

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

/// The real binary, with no `AGGIOS_*` of the test's environment.
pub(crate) fn aggios() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aggios"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AGGIOS_") {
            cmd.env_remove(key);
        }
    }
    cmd.kill_on_drop(true);
    cmd
}

async fn fails_naming(env: (&str, &str), expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out = aggios()
        .current_dir(dir.path())
        .env(env.0, env.1)
        .arg("serve")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{env:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for e in expected {
        assert!(stderr.contains(e), "{env:?}: `{e}` missing from: {stderr}");
    }
}

#[tokio::test]
async fn bad_settings_stop_start_up_naming_the_setting() {
    fails_naming(("AGGIOS_DATABASE_URL", "mysql://x"), &["database.url", "AGGIOS_DATABASE_URL", "postgres://"]).await;
    fails_naming(("AGGIOS_SERVER_PORT", "eighty"), &["port"]).await;
    fails_naming(("AGGIOS_SERVER_PROT", "80"), &["prot"]).await;
    fails_naming(("AGGIOS_STORAGE_BACKEND", "s3"), &["storage.s3_bucket"]).await;
    fails_naming(("AGGIOS_REDIS_URL", "http://x"), &["redis.url"]).await;
    fails_naming(("AGGIOS_CONFIG", "/nonexistent/aggios.toml"), &["does not exist"]).await;
}

#[tokio::test]
async fn a_config_file_is_read_and_the_environment_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("aggios.toml"), "[server]\nport = 1\nbase_domain = \"BAD DOMAIN\"\n").unwrap();
    let out = aggios().current_dir(dir.path()).arg("serve").output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.base_domain"));
}

#[tokio::test]
async fn export_schema_prints_the_sdl() {
    let out = aggios().args(["export-schema", "--output", "-"]).output().await.unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("tenant: Tenant!"));
}

/// `aggios serve` on the embedded default in `dir` with `env`, its address
/// (`host:port`) once it says it listens, and the rest of what it prints.
async fn serve_embedded(
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (tokio::process::Child, String, tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) {
    let mut child = aggios()
        .current_dir(dir)
        .env("AGGIOS_SERVER_PORT", "0")
        .envs(env.iter().copied())
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("Aggios is listening on http://") {
                return url.to_owned();
            }
        }
        panic!("the server never said where it listens");
    })
    .await
    .unwrap();
    (child, addr, lines)
}

#[tokio::test]
async fn serve_on_the_embedded_default_answers_and_sigterm_lets_in_flight_requests_finish() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, mut lines) = serve_embedded(dir.path(), &[]).await;
    assert!(lines.next_line().await.unwrap().unwrap().contains("/graphql"));
    assert!(lines.next_line().await.unwrap().unwrap().contains("/playground"));

    // The image's HEALTHCHECK: `aggios healthcheck` exits 0 only on a 2xx.
    let healthcheck = |path: &str| {
        let mut cmd = aggios();
        cmd.args(["healthcheck", "--url", &format!("http://{addr}{path}")]);
        async move { cmd.output().await.unwrap() }
    };
    assert!(healthcheck("/healthz").await.status.success());
    let missing = healthcheck("/nowhere").await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("answered 404"), "{}", String::from_utf8_lossy(&missing.stderr));

    let body = r#"{"query":"{ __typename }"}"#;
    let (first, rest) = body.split_at(10);
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(format!("POST /graphql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first}", body.len()).as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // SIGTERM while that request is still in flight (half its body sent).
    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(tokio::net::TcpStream::connect(&addr).await.is_err(), "new connections are refused after SIGTERM");

    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "the in-flight request was cut: {response}");
    assert!(response.contains(r#"{"data":{"__typename":"Query"}}"#), "{response}");
    assert!(dir.path().join("data/aggios.db").exists(), "the SQLite file lives in the data dir");

    let status = tokio::time::timeout(Duration::from_secs(15), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    assert_eq!(healthcheck("/healthz").await.status.code(), Some(1), "a stopped server is unhealthy");
}

#[test]
fn the_example_settings_file_parses_and_matches_the_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../aggios.example.toml");
    let from_file = aggios::config::Settings::load(Some(&path)).unwrap();
    let defaults = aggios::config::Settings::default();
    assert_eq!(serde_json::to_value(&from_file).unwrap(), serde_json::to_value(&defaults).unwrap());
}

#[tokio::test]
async fn migrate_up_status_and_down_work_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: Vec<String>| {
        let mut cmd = aggios();
        cmd.current_dir(dir.path()).args(&args);
        async move {
            let out = cmd.output().await.unwrap();
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let words = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let all = <migration::Migrator as migration::MigratorTrait>::migrations().len();
    let before = run(words("migrate status")).await;
    assert!(before.lines().all(|l| l.starts_with("Pending")) && before.lines().count() == all, "{before}");
    run(words("migrate up")).await;
    let after = run(words("migrate status")).await;
    assert!(after.lines().all(|l| l.starts_with("Applied")), "{after}");
    run(words(&format!("migrate down --steps {all}"))).await;
    let down = run(words("migrate status")).await;
    assert!(down.lines().all(|l| l.starts_with("Pending")), "{down}");
}

#[tokio::test]
async fn keys_and_platform_admins_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &'static [&'static str], stdin: &'static str| {
        let mut cmd = aggios();
        cmd.current_dir(dir.path()).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        async move {
            let mut child = cmd.spawn().unwrap();
            child.stdin.take().unwrap().write_all(stdin.as_bytes()).await.unwrap();
            let out = child.wait_with_output().await.unwrap();
            (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
        }
    };
    let (ok, out) = run(&["keys", "generate"], "").await;
    assert!(ok && out.contains("k4.pid."), "{out}");
    let (ok, out) = run(&["keys", "generate"], "").await;
    assert!(!ok && out.contains("rotate"), "generate must not overwrite: {out}");
    let (ok, out) = run(&["keys", "rotate"], "").await;
    assert!(ok && out.contains("k4.pid."), "{out}");
    let keys: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("data/keys/keyring.json")).unwrap()).unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);

    let (ok, out) = run(&["platform-admin", "create", "--email", "Root@Aggios.test"], "tundra velvet orbit 42\n").await;
    assert!(ok && out.contains("root@aggios.test"), "{out}");
    let (ok, out) = run(&["platform-admin", "create", "--email", "weak@aggios.test"], "password\n").await;
    assert!(!ok && out.contains("password"), "{out}");
}

#[tokio::test]
async fn deactivating_a_platform_administrator_from_the_command_line_ends_their_tokens_on_a_running_server() {
    use crate::helpers::{API_HOST, Backend, PASSWORD, TestApp};
    let app = TestApp::new(Backend::Postgres).await;
    let token = app.platform_admin().await;
    let tenants = "{ platformTenants { id } }";
    assert!(app.gql_as(API_HOST, &token, tenants).await.body["data"]["platformTenants"].is_array());
    let admin_email: String = {
        use sea_orm::EntityTrait as _;
        let admins = entity::platform_admins::Entity::find().all(app.state.db.platform()).await.unwrap();
        admins[0].email.clone()
    };

    let dir = tempfile::tempdir().unwrap();
    let url = app.pg.as_ref().unwrap().url.clone();
    let out = aggios()
        .current_dir(dir.path())
        .args(["platform-admin", "deactivate", "--email", &admin_email])
        .env("AGGIOS_DATABASE_URL", &url)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Another process ended it: the running server learns it from the
    // database within its reload interval.
    let started = std::time::Instant::now();
    loop {
        let a = app.gql_as(API_HOST, &token, tenants).await;
        if a.code() == Some("UNAUTHENTICATED") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "still served: {:?}", a.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = app
        .gql_vars(API_HOST, &[], "mutation($e: String!, $p: String!) { platformLogin(email: $e, password: $p) { accessToken } }",
            serde_json::json!({ "e": admin_email, "p": PASSWORD }))
        .await;
    assert_eq!(again.code(), Some("INVALID_CREDENTIALS"));
}

#[tokio::test]
async fn with_a_drain_period_sigterm_turns_readiness_away_while_requests_are_still_served() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, _lines) = serve_embedded(dir.path(), &[("AGGIOS_SERVER_DRAIN_SECS", "2")]).await;
    let addr = format!("http://{addr}");
    assert_eq!(reqwest::get(format!("{addr}/readyz")).await.unwrap().status(), 200);
    let pid = child.id().unwrap().to_string();
    assert!(tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap().success());
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Draining: readiness is 503 so a balancer turns away, but requests
    // (new connections too) are still answered.
    for path in ["/readyz", "/healthz"] {
        let ready = reqwest::get(format!("{addr}{path}")).await.unwrap();
        assert_eq!(ready.status(), 503, "{path}");
        assert_eq!(ready.text().await.unwrap(), r#"{"status":"stopping"}"#);
    }
    let answered = reqwest::Client::new()
        .post(format!("{addr}/graphql"))
        .header("content-type", "application/json")
        .body(r#"{"query":"{ __typename }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
    assert_eq!(answered.headers()["connection"], "close", "a proxy's pooled connection ends cleanly");

    // Then it stops accepting and exits.
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    assert!(reqwest::get(format!("{addr}/readyz")).await.is_err());
}
