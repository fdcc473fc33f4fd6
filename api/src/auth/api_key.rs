//! API keys for integrators: `agk_{prefix}_{secret}`. The prefix is public
//! (shown in lists, used to find the key); the secret is 256 random bits kept
//! only as its SHA-256, compared in constant time.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{Rng as _, RngCore as _};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

const PREFIX_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
const PREFIX_LEN: usize = 12;

pub struct NewApiKey {
    pub key: String,
    pub prefix: String,
    pub secret_hash: String,
}

pub fn generate() -> NewApiKey {
    let mut rng = rand::rng();
    let prefix: String =
        (0..PREFIX_LEN).map(|_| PREFIX_ALPHABET[rng.random_range(0..PREFIX_ALPHABET.len())] as char).collect();
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    NewApiKey { key: format!("agk_{prefix}_{secret}"), secret_hash: hash(&secret), prefix }
}

/// `(prefix, secret)` of a well-formed key.
pub fn parse(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("agk_")?;
    let (prefix, secret) = rest.split_at_checked(PREFIX_LEN)?;
    let secret = secret.strip_prefix('_')?;
    (prefix.bytes().all(|b| PREFIX_ALPHABET.contains(&b)) && secret.len() == 43).then_some((prefix, secret))
}

pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    hash(secret).as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back_and_verify_only_their_own_secret() {
        let k = generate();
        let (prefix, secret) = parse(&k.key).unwrap();
        assert_eq!(prefix, k.prefix);
        assert!(secret_matches(secret, &k.secret_hash));
        let other = generate();
        assert!(!secret_matches(parse(&other.key).unwrap().1, &k.secret_hash));
        for bad in ["", "agk_", "agk_short_x", &k.key.replace("agk_", "xyz_"), &format!("{}x", k.key)] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
