//! The signing keys of access tokens: one signs, every key verifies, so keys
//! rotate with no downtime (`aggios keys rotate` adds a key that signs from
//! then on; tokens signed by the previous ones stay valid until they expire).
//!
//! Stored as JSON of PASERK strings. The embedded default generates it on
//! first start under the data directory; production must be given one.

use std::{collections::HashMap, path::Path};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use pasetors::{
    keys::{AsymmetricKeyPair, AsymmetricPublicKey, AsymmetricSecretKey, Generate as _},
    paserk::{FormatAsPaserk as _, Id},
    version4::V4,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    /// Oldest first; the last one signs.
    keys: Vec<StoredKey>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKey {
    /// `k4.secret.…`
    secret: String,
    created_at: DateTime<Utc>,
}

pub struct Keyring {
    signing_id: String,
    signing_paserk_id: Id,
    signing: AsymmetricSecretKey<V4>,
    verifying: HashMap<String, AsymmetricPublicKey<V4>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("signing_id", &self.signing_id).field("keys", &self.verifying.len()).finish()
    }
}

fn new_key() -> anyhow::Result<StoredKey> {
    let pair = AsymmetricKeyPair::<V4>::generate().map_err(|e| anyhow::anyhow!("generating a key: {e:?}"))?;
    let mut secret = String::new();
    pair.secret.fmt(&mut secret).map_err(|e| anyhow::anyhow!("formatting a key: {e:?}"))?;
    Ok(StoredKey { secret, created_at: Utc::now() })
}

fn key_id(public: &AsymmetricPublicKey<V4>) -> anyhow::Result<String> {
    let mut id = String::new();
    Id::from(public).fmt(&mut id).map_err(|e| anyhow::anyhow!("key id: {e:?}"))?;
    Ok(id)
}

fn read(path: &Path) -> anyhow::Result<KeyringFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the keyring {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing the keyring {}", path.display()))
}

fn write(path: &Path, file: &KeyringFile) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(file)?).with_context(|| format!("writing {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

impl Keyring {
    /// Loads `path`; when it is missing and `generate_if_missing`, creates it
    /// with one new key.
    pub fn load(path: &Path, generate_if_missing: bool) -> anyhow::Result<Self> {
        if !path.exists() {
            anyhow::ensure!(
                generate_if_missing,
                "no keyring at {} (setting auth.keyring_file): create one with `aggios keys generate`",
                path.display()
            );
            write(path, &KeyringFile { keys: vec![new_key()?] })?;
            tracing::info!(path = %path.display(), "generated a new signing keyring");
        }
        Self::from_file(read(path)?)
    }

    fn from_file(file: KeyringFile) -> anyhow::Result<Self> {
        let mut verifying = HashMap::new();
        let mut last: Option<(String, Id, AsymmetricSecretKey<V4>)> = None;
        for key in &file.keys {
            let secret = AsymmetricSecretKey::<V4>::try_from(key.secret.as_str())
                .map_err(|e| anyhow::anyhow!("a keyring entry is not a k4.secret PASERK: {e:?}"))?;
            let public = AsymmetricPublicKey::<V4>::try_from(&secret).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let id = key_id(&public)?;
            let paserk_id = Id::from(&public);
            verifying.insert(id.clone(), public);
            last = Some((id, paserk_id, secret));
        }
        let (signing_id, signing_paserk_id, signing) = last.context("the keyring holds no key")?;
        Ok(Self { signing_id, signing_paserk_id, signing, verifying })
    }

    /// Creates a keyring with one key; refuses to overwrite one.
    pub fn generate(path: &Path) -> anyhow::Result<String> {
        anyhow::ensure!(!path.exists(), "{} exists already; use `aggios keys rotate`", path.display());
        write(path, &KeyringFile { keys: vec![new_key()?] })?;
        Ok(Self::from_file(read(path)?)?.signing_id)
    }

    /// Adds a new signing key and keeps the newest `keep` keys in all.
    pub fn rotate(path: &Path, keep: usize) -> anyhow::Result<String> {
        let mut file = read(path)?;
        file.keys.push(new_key()?);
        let excess = file.keys.len().saturating_sub(keep.max(2));
        file.keys.drain(..excess);
        write(path, &file)?;
        Ok(Self::from_file(read(path)?)?.signing_id)
    }

    /// The signing key and its PASERK id (for the token footer).
    pub fn signing(&self) -> (&Id, &AsymmetricSecretKey<V4>) {
        (&self.signing_paserk_id, &self.signing)
    }

    pub fn signing_id(&self) -> &str {
        &self.signing_id
    }

    pub fn verifying(&self, id: &str) -> Option<&AsymmetricPublicKey<V4>> {
        self.verifying.get(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_adds_a_signing_key_and_keeps_the_old_ones_verifying() {
        let dir = tempfile_dir();
        let path = dir.join("keyring.json");
        let first = Keyring::generate(&path).unwrap();
        assert!(Keyring::generate(&path).is_err(), "generate must not overwrite");
        let second = Keyring::rotate(&path, 3).unwrap();
        assert_ne!(first, second);
        let ring = Keyring::load(&path, false).unwrap();
        assert_eq!(ring.signing_id(), second);
        assert!(ring.verifying(&first).is_some() && ring.verifying(&second).is_some());
        let third = Keyring::rotate(&path, 2).unwrap();
        let ring = Keyring::load(&path, false).unwrap();
        assert!(ring.verifying(&first).is_none(), "the oldest key is dropped past `keep`");
        assert!(ring.verifying(&second).is_some() && ring.signing_id() == third);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("aggios-keyring-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
