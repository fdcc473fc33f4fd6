//! Password hashing (argon2id, off the async runtime, with a bound on how
//! many run at once) and the password policy.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::Semaphore;

use crate::{
    config::Settings,
    error::{ApiError, ApiResult},
};

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

#[derive(Clone)]
pub struct Passwords {
    params: Params,
    permits: Arc<Semaphore>,
    /// Verified against when the account does not exist, so that an unknown
    /// email costs the same time as a wrong password.
    dummy_hash: Arc<String>,
    /// Verifications run so far: lets tests see that every sign-in path pays
    /// for exactly one, whatever the account's state.
    verifications: Arc<AtomicU64>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").field("params", &self.params).finish_non_exhaustive()
    }
}

impl Passwords {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let a = &settings.auth;
        let params = Params::new(a.argon2_memory_kib, a.argon2_iterations, a.argon2_parallelism, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters (settings auth.argon2_*): {e}"))?;
        let dummy = hasher(&params)
            .hash_password(b"not a real password, only for equal timing")
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string();
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(settings.hash_concurrency())),
            dummy_hash: Arc::new(dummy),
            verifications: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The PHC string of `password`.
    pub async fn hash(&self, password: &str) -> ApiResult<String> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.blocking(move || {
            hasher(&params).hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| anyhow::anyhow!("argon2: {e}"))
        })
        .await
    }

    /// Whether `password` matches `phc`. Unknown accounts pass `None` and
    /// spend the same time on a dummy hash.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> ApiResult<bool> {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let real = phc.is_some();
        let phc = phc.map_or_else(|| self.dummy_hash.as_str().to_owned(), str::to_owned);
        let password = password.to_owned();
        let params = self.params.clone();
        let ok = self.blocking(move || Ok(hasher(&params).verify_password(password.as_bytes(), phc.as_str()).is_ok())).await?;
        Ok(real && ok)
    }

    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> ApiResult<T> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)?.map_err(ApiError::internal)
    }
}

fn hasher(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

/// The rules for a new password: 8 to 128 characters, and not guessable —
/// not one of the common passwords nor built from the user's own details
/// (zxcvbn's dictionaries and estimate, score at least 2 of 4).
pub fn check_policy(password: &str, user_inputs: &[&str]) -> ApiResult<()> {
    let bad = |message: &str| ApiError::BadUserInput { field: "password", message: message.into() };
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(bad("must be at least 8 characters long"));
    }
    if len > MAX_LEN {
        return Err(bad("must be at most 128 characters long"));
    }
    // The user's details as typed, word by word, joined, and an email's
    // local part: "Acme Agency" must also catch "acmeagency1".
    let mut words: Vec<String> = Vec::new();
    for input in user_inputs {
        let lower = input.to_lowercase();
        words.extend(lower.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() >= 3).map(str::to_owned));
        words.push(lower.split_whitespace().collect());
        words.push(lower);
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let estimate = zxcvbn::zxcvbn(password, &words);
    if u8::from(estimate.score()) < 2 {
        return Err(bad("is too common or too easy to guess; a few unrelated words make a strong one"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_and_personal_passwords_are_refused_and_passphrases_accepted() {
        for weak in ["password", "12345678", "qwertyuiop", "iloveyou1", "Password1", "aaaaaaaa", "acmeagency"] {
            assert!(check_policy(weak, &["ana@acme.com", "acme", "agency"]).is_err(), "{weak} accepted");
        }
        assert!(check_policy("short1!", &[]).is_err());
        assert!(check_policy(&"x".repeat(129), &[]).is_err());
        for strong in ["correct horse battery staple", "tundra-velvet-orbit-42", &"lamp clock river ".repeat(3)] {
            assert!(check_policy(strong, &["ana@acme.com"]).is_ok(), "{strong} refused");
        }
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_at_least_the_owasp_parameters() {
        let passwords = Passwords::new(&Settings::default()).unwrap();
        let phc = passwords.hash("correct horse battery staple").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(passwords.verify("correct horse battery staple", Some(&phc)).await.unwrap());
        assert!(!passwords.verify("wrong horse battery staple", Some(&phc)).await.unwrap());
        assert!(!passwords.verify("correct horse battery staple", None).await.unwrap());
    }
}
