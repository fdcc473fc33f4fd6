//! Memory comes back: the real binary (its allocator included) after a burst
//! of wrong sign-ins, each of which fills a 19 MiB argon2 buffer, returns to
//! within 64 MiB of where it started. With glibc's allocator 200 of them took
//! a fresh server from 49 to 262 MiB, for good.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::json;
use tokio::io::AsyncBufReadExt as _;

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024.0
}

async fn post(client: &reqwest::Client, url: &str, host: &str, body: serde_json::Value) -> serde_json::Value {
    let resp = client.post(url).header("host", host).header("content-type", "application/json").body(body.to_string()).send().await.unwrap();
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rss_returns_after_a_burst_of_wrong_sign_ins() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = crate::cli::aggios()
        .current_dir(dir.path())
        .args(["serve"])
        .env("AGGIOS_SERVER_PORT", "0")
        .env("AGGIOS_LOG_LEVEL", "warn")
        // Every attempt is to be hashed: the per-address limit would stop the burst.
        .env("AGGIOS_AUTH_LOGIN_FAILURES_PER_ADDRESS", "100000")
        .env("AGGIOS_RATE_LIMITS_SIGN_INS_PER_ADDRESS_PER_MINUTE", "0")
        .env("AGGIOS_AUTH_HASH_CONCURRENCY", "4")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = server.id().unwrap();
    let mut lines = tokio::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
        if let Some(addr) = line.strip_prefix("Aggios is listening on ") {
            break addr.trim().to_owned();
        }
    };
    let url = format!("{addr}/graphql");
    let client = reqwest::Client::new();
    let signed = post(&client, &url, "localhost", json!({
        "query": "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }",
        "variables": { "i": { "agencyName": "Mem", "subdomain": "mem", "email": "owner@mem.com",
            "password": "tundra velvet orbit 42", "firstName": "Olga", "lastName": "Owner" } },
    }))
    .await;
    assert!(signed["data"]["signUp"]["accessToken"].is_string(), "{signed}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_mib(pid);

    let login = "mutation($i: LoginInput!) { login(input: $i) { accessToken } }";
    let mut peak = before;
    for wave in 0..4 {
        let answers = join_all((0..32).map(|i| {
            post(&client, &url, "mem.localhost", json!({ "query": login, "variables": { "i": {
                "email": format!("who{wave}-{i}@mem.com"), "password": "not the password at all" } } }))
        }))
        .await;
        for a in &answers {
            assert_eq!(a["errors"][0]["extensions"]["code"], "INVALID_CREDENTIALS", "{a}");
        }
        peak = peak.max(rss_mib(pid));
    }
    let settled = Instant::now();
    let mut after = rss_mib(pid);
    while after > before + 64.0 && settled.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        after = rss_mib(pid);
    }
    eprintln!("RSS: {before:.0} MiB before, {peak:.0} MiB at the peak, {after:.0} MiB {:?} after", settled.elapsed());
    assert!(after <= before + 64.0, "RSS {before:.0} -> {after:.0} MiB after 128 wrong sign-ins (peak {peak:.0})");
    server.kill().await.unwrap();
}
