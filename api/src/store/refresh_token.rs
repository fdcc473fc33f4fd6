//! Refresh tokens: `rt.{tenant}.{256 random bits}`. The tenant part only says
//! where to look (and lets a token presented on the wrong tenant fail fast);
//! the secret is stored only as its SHA-256.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

pub struct NewRefreshToken {
    pub token: String,
    pub hash: String,
}

pub fn generate(tenant: Uuid) -> NewRefreshToken {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = format!("rt.{}.{}", tenant.simple(), URL_SAFE_NO_PAD.encode(secret));
    let hash = hash(&token);
    NewRefreshToken { token, hash }
}

/// The tenant a refresh token claims to belong to, if it is well formed.
pub fn tenant_of(token: &str) -> Option<Uuid> {
    let mut parts = token.split('.');
    let (Some("rt"), Some(tenant), Some(secret), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    (secret.len() == 43).then_some(())?;
    Uuid::try_parse(tenant).ok()
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_tenant_and_are_stored_only_as_hashes() {
        let tenant = Uuid::now_v7();
        let t = generate(tenant);
        assert_eq!(tenant_of(&t.token), Some(tenant));
        assert_eq!(t.hash, hash(&t.token));
        assert!(!t.hash.contains(t.token.rsplit('.').next().unwrap()));
        assert_ne!(generate(tenant).token, t.token);
        for bad in ["", "rt", "rt.x.y", &format!("rt.{}.short", tenant.simple()), &format!("xx.{}.{}", tenant.simple(), "a".repeat(43))] {
            assert_eq!(tenant_of(bad), None, "{bad}");
        }
    }
}
