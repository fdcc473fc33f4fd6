//! Access-token cost, side by side in one run: verifying a PASETO v4.public
//! token the first time and again (from the verdict cache, what a client's
//! later requests pay), signing one (each login or refresh), and one argon2id
//! password check (each login) for scale.
//! `cargo bench --bench tokens`; `benches/identity.sh` runs it too.

use std::{hint::black_box, time::Instant};

use aggios::{
    auth::{
        Role,
        keyring::Keyring,
        password::Passwords,
        principal::UserPrincipal,
        tokens::Tokens,
    },
    config::Settings,
};
use uuid::Uuid;

fn per_op_us(iterations: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations)
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("aggios-bench-{}", Uuid::now_v7()));
    let path = dir.join("keyring.json");
    Keyring::generate(&path)?;
    let tokens = Tokens::new(std::sync::Arc::new(Keyring::load(&path, false)?), "aggios".into(), std::time::Duration::from_secs(900));
    let tenant = Uuid::now_v7();
    let user = UserPrincipal { user_id: Uuid::now_v7(), tenant_id: tenant, role: Role::Admin, email: "ana@acme.com".into(), session_id: Uuid::now_v7() };
    let (token, _) = tokens.issue_user(&user).map_err(|e| anyhow::anyhow!("{e:?}"))?;

    // A token's first verification (the Ed25519 check), on fresh tokens...
    let fresh: Vec<String> = (0..4_000).map(|_| tokens.issue_user(&user).map(|t| t.0)).collect::<Result<_, _>>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut next = fresh.iter();
    let verify = per_op_us(3_600, || {
        let t = next.next().unwrap_or(&token);
        black_box(tokens.verify(black_box(t), Some(tenant)).is_ok());
    });
    // ...and its next ones, answered from the verdict cache.
    let cached = per_op_us(20_000, || {
        black_box(tokens.verify(black_box(&token), Some(tenant)).is_ok());
    });
    let sign = per_op_us(20_000, || {
        black_box(tokens.issue_user(black_box(&user)).is_ok());
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let passwords = Passwords::new(&Settings::default())?;
    let phc = rt.block_on(passwords.hash("tundra velvet orbit 42")).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let argon = per_op_us(40, || {
        black_box(rt.block_on(passwords.verify("tundra velvet orbit 42", Some(&phc))).is_ok());
    });
    let _ = std::fs::remove_dir_all(dir);

    println!("| operation | µs per op | ratio to token verification |");
    println!("|---|---|---|");
    println!("| verify access token, first time (Ed25519) | {verify:.1} | 1.0 |");
    println!("| verify access token, again (verdict cache) | {cached:.2} | {:.3} |", cached / verify);
    println!("| sign access token (login, refresh) | {sign:.1} | {:.1} |", sign / verify);
    println!("| argon2id password check (login) | {argon:.1} | {:.0} |", argon / verify);
    println!("verify_us={verify:.1}");
    Ok(())
}
