//! Typed settings: built-in defaults, then an optional TOML file, then
//! `AGGIOS_*` environment variables. Every setting is documented in the
//! README table and in `aggios.example.toml`. Unknown keys are refused, and a
//! bad value stops start-up with a message naming the setting.

use std::{net::IpAddr, path::PathBuf};

mod defaults;
mod limits;
mod metrics;
mod persisted_queries;
mod rate_limits;
mod subscriptions;
mod traces;
mod validate;

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use limits::LimitsSettings;
pub use persisted_queries::PersistedQuerySettings;
pub use rate_limits::RateLimitSettings;
pub use metrics::MetricsSettings;
pub use subscriptions::SubscriptionSettings;
pub use traces::TracingSettings;

/// Top-level sections; `AGGIOS_<SECTION>_<KEY>` maps to `<section>.<key>`.
const SECTIONS: &[&str] = &["server", "database", "redis", "storage", "log", "auth", "limits", "rate_limits", "persisted_queries", "subscriptions", "metrics", "tracing"];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where the embedded default keeps its SQLite file, objects and keys.
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub storage: StorageSettings,
    pub log: LogSettings,
    pub auth: AuthSettings,
    pub rate_limits: RateLimitSettings,
    pub persisted_queries: PersistedQuerySettings,
    pub limits: LimitsSettings,
    pub subscriptions: SubscriptionSettings,
    pub metrics: MetricsSettings,
    pub tracing: TracingSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: IpAddr,
    pub port: u16,
    /// Tenants live at `{subdomain}.{base_domain}`; `api.{base_domain}` and
    /// the base domain itself are the general API host.
    pub base_domain: String,
    pub environment: Environment,
    /// How long in-flight requests may run on after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// After SIGTERM, how long the server goes on serving everything while
    /// `/readyz` answers 503, before it stops accepting: a load balancer
    /// that checks readiness more often than this has stopped sending it
    /// requests by then, so none is refused (0: stop accepting at once).
    pub drain_secs: u64,
    /// How long a resolved host -> tenant mapping is cached.
    pub tenant_cache_ttl_secs: u64,
    /// Proxies (addresses or CIDR ranges, e.g. Traefik's network) whose
    /// `X-Forwarded-For` is believed: the client is the last address in it
    /// that is not itself a trusted proxy. From any other peer the header is
    /// ignored, so a client cannot pick its own address.
    pub trusted_proxies: Vec<String>,
    /// A request head must arrive whole within this many seconds.
    pub header_read_timeout_secs: u64,
    /// A keep-alive connection with no request in flight is closed after
    /// this many seconds of silence.
    pub idle_timeout_secs: u64,
    /// A request body must keep arriving at this many bytes a second on
    /// average (after the first `body_grace_secs`), or it is cut off.
    pub min_body_bytes_per_sec: u64,
    pub body_grace_secs: u64,
    /// Open connections at most; further ones are closed at once.
    pub max_connections: usize,
    /// Web origins (`https://app.example.com`) whose pages may call the API
    /// from a browser, beyond each agency's own (its subdomain and custom
    /// domain over https, allowed automatically).
    pub cors_allowed_origins: Vec<String>,
    /// `Strict-Transport-Security: max-age` for deployments that terminate
    /// TLS in front of the server; 0 sends none.
    pub hsts_max_age_secs: u64,
    /// Operations one batched request (a JSON array) may hold.
    pub max_batch_operations: usize,
    /// Answer the agency's list and object reads from a look-ahead plan
    /// (a fixed number of statements, values built directly) where the
    /// selection allows; `false` resolves every field on its own. The two
    /// give the same bytes (a test proves it); this is the switch that test
    /// and a diagnosis use.
    pub planned_reads: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://...` or `sqlite://...`; unset means a SQLite file in
    /// `data_dir`.
    #[serde(serialize_with = "expose_opt")]
    pub url: Option<SecretString>,
    /// The connection used by `aggios migrate` (the schema owner). Defaults
    /// to `url`.
    #[serde(serialize_with = "expose_opt")]
    pub migration_url: Option<SecretString>,
    /// PostgreSQL: the role every server connection switches to (`SET ROLE`).
    /// Empty to run as the connecting user (which must then be that role).
    pub runtime_role: String,
    pub max_connections: u32,
    /// The wait for a pooled connection and, on SQLite, for the writer's turn.
    pub acquire_timeout_secs: u64,
    /// Run pending migrations when `serve` starts. Unset: yes on SQLite, no
    /// on PostgreSQL (run `aggios migrate up` as the owner instead).
    pub migrate_on_start: Option<bool>,
    /// PostgreSQL: `statement_timeout`, `lock_timeout` and
    /// `idle_in_transaction_session_timeout` of every server connection, in
    /// milliseconds (0 turns one off).
    pub statement_timeout_ms: u64,
    pub lock_timeout_ms: u64,
    pub idle_in_transaction_timeout_ms: u64,
    /// PostgreSQL streaming replicas (`postgres://...`) that queries read
    /// from; mutations, and the reads of an agency whose latest write a
    /// replica has not replayed yet, stay on the primary.
    #[serde(serialize_with = "expose_vec")]
    pub replica_urls: Vec<SecretString>,
    /// A replica further behind the primary than this is not read from
    /// until it catches up.
    pub replica_max_lag_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://` or `rediss://`; unset means the in-process cache.
    #[serde(serialize_with = "expose_opt")]
    pub url: Option<SecretString>,
    /// Prepended to every key (`{key_prefix}:...`), so several deployments
    /// can share one Redis.
    pub key_prefix: String,
    pub pool_size: u32,
    /// Longest wait for one Redis call, connecting included.
    pub timeout_ms: u64,
    /// After a failed call Redis is skipped, and probed this often in the
    /// background until it answers.
    pub breaker_cooldown_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    Local,
    S3,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub backend: StorageBackend,
    /// Local backend: the directory; defaults to `{data_dir}/objects`.
    pub local_dir: Option<PathBuf>,
    /// S3 endpoint, e.g. `http://127.0.0.1:8333`; unset means AWS.
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    pub s3_bucket: Option<String>,
    pub s3_access_key_id: Option<String>,
    #[serde(serialize_with = "expose_opt")]
    pub s3_secret_access_key: Option<SecretString>,
    /// Path-style addressing (MinIO, SeaweedFS); virtual-host style when false.
    pub s3_path_style: bool,
    /// Server-side encryption: unset (the bucket's default), "AES256", or
    /// "aws:kms" with `s3_kms_key_id`.
    pub s3_server_side_encryption: Option<String>,
    pub s3_kms_key_id: Option<String>,
    /// Largest file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Largest upload request (all files and fields together), in bytes.
    pub max_request_bytes: u64,
    /// Most files in one request.
    pub max_files_per_request: usize,
    /// Uploads streamed at once (each holds up to three 8 MiB parts in
    /// memory); a further one waits up to 5 s for a slot, then answers
    /// `SERVICE_UNAVAILABLE`.
    pub max_concurrent_uploads: usize,
    /// How long presigned URLs and signed links stay valid.
    pub url_ttl_secs: u64,
    /// How often `serve` sweeps unreachable bytes (0: never; run
    /// `aggios storage sweep` instead).
    pub sweep_interval_secs: u64,
    /// Objects younger than this are never swept: their upload may still be
    /// committing.
    pub sweep_grace_secs: u64,
    /// How often `serve` removes what abandoned uploads left: staging objects
    /// of expired direct-upload grants (whose reservations it gives back)
    /// and files whose removal failed (0: only with the full sweep).
    pub upload_sweep_interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `iss` of every access token.
    pub issuer: String,
    pub access_token_ttl_secs: u64,
    /// A refresh token unused this long expires.
    pub refresh_idle_ttl_secs: u64,
    /// A session ends this long after sign-in, however it is used.
    pub refresh_absolute_ttl_secs: u64,
    /// The signing keys (JSON, PASERK). Unset: `{data_dir}/keys/keyring.json`,
    /// generated on first start in development.
    pub keyring_file: Option<PathBuf>,
    /// argon2id memory in KiB, iterations and lanes: at least OWASP's
    /// m=19456, t=2, p=1.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Password hashes computed at once (each takes a core for tens of ms).
    /// Unset: one less than the cores, at least one.
    pub hash_concurrency: Option<usize>,
    /// Failed logins from one address for one account, within
    /// `login_window_secs`, before that pair must wait (doubling each time).
    pub login_failures_per_account_and_address: u32,
    /// Failed logins from one address, for any accounts, before it must wait.
    pub login_failures_per_address: u32,
    /// Failed logins for one account from anywhere before each further
    /// attempt is slowed by a second (never locked).
    pub login_failures_per_account: u32,
    pub login_window_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// Unset: pretty in development, JSON in production.
    pub format: Option<LogFormat>,
    /// An `EnvFilter` directive, e.g. `info,aggios=debug`.
    pub level: String,
    /// SQL statements are logged at debug; one that takes longer than this
    /// is logged at warn, with its text and time.
    pub slow_statement_ms: u64,
}

fn expose_vec<S: serde::Serializer>(v: &[SecretString], s: S) -> Result<S::Ok, S::Error> {
    v.iter().map(|v| v.expose_secret().to_owned()).collect::<Vec<_>>().serialize(s)
}

fn expose_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    v.as_ref().map(|v| v.expose_secret().to_owned()).serialize(s)
}

/// A setting that is missing or wrong, named the way the operator wrote it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(String),
    #[error("setting `{key}` (env AGGIOS_{env}): {problem}")]
    Invalid { key: &'static str, env: String, problem: String },
}

pub(super) fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, env: key.replace('.', "_").to_uppercase(), problem: problem.into() }
}

impl Settings {
    /// Defaults, then `file` (or `aggios.toml` when present), then the
    /// environment.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(invalid("config", format!("file {} does not exist", path.display())));
                }
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file("aggios.toml")),
        }
        let settings: Settings = figment
            .merge(Env::prefixed("AGGIOS_").ignore(&["CONFIG"]).map(|key| env_key(key.as_str()).into()))
            .extract()
            .map_err(|e| ConfigError::Load(describe(e)))?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn log_format(&self) -> LogFormat {
        self.log.format.unwrap_or(match self.server.environment {
            Environment::Development => LogFormat::Pretty,
            Environment::Production => LogFormat::Json,
        })
    }

    pub fn is_production(&self) -> bool {
        self.server.environment == Environment::Production
    }

    /// The database the server connects to.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("aggios.db").display()),
        }
    }

    /// The database `aggios migrate` connects to.
    pub fn migration_url(&self) -> String {
        match &self.database.migration_url {
            Some(url) => url.expose_secret().to_owned(),
            None => self.database_url(),
        }
    }

    pub fn keyring_file(&self) -> PathBuf {
        self.auth.keyring_file.clone().unwrap_or_else(|| self.data_dir.join("keys").join("keyring.json"))
    }

    pub fn hash_concurrency(&self) -> usize {
        self.auth.hash_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
        })
    }

    /// `server.trusted_proxies`, parsed (validated at load).
    pub fn trusted_proxies(&self) -> Vec<crate::net::Cidr> {
        self.server.trusted_proxies.iter().filter_map(|p| crate::net::Cidr::parse(p)).collect()
    }

    pub fn local_objects_dir(&self) -> PathBuf {
        self.storage.local_dir.clone().unwrap_or_else(|| self.data_dir.join("objects"))
    }
}

/// Each problem on a line of its own, naming the setting by its path and
/// where the value came from.
fn describe(err: figment::Error) -> String {
    err.into_iter()
        .map(|e| {
            let path = e.path.join(".").to_ascii_lowercase();
            let source = e.metadata.as_ref().map(|m| m.name.to_string()).unwrap_or_else(|| "defaults".into());
            if path.is_empty() {
                format!("{} (from {source})", e.kind)
            } else {
                format!("setting `{path}`: {} (from {source})", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `DATABASE_URL` -> `database.url`, `DATA_DIR` -> `data_dir`.
fn env_key(key: &str) -> String {
    let key = key.to_ascii_lowercase();
    for section in SECTIONS {
        if let Some(rest) = key.strip_prefix(section).and_then(|r| r.strip_prefix('_')) {
            return format!("{section}.{rest}");
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names_map_to_sections() {
        assert_eq!(env_key("DATABASE_URL"), "database.url");
        assert_eq!(env_key("SERVER_BASE_DOMAIN"), "server.base_domain");
        assert_eq!(env_key("STORAGE_S3_BUCKET"), "storage.s3_bucket");
        assert_eq!(env_key("DATA_DIR"), "data_dir");
        assert_eq!(env_key("RATE_LIMITS_USER_REQUESTS_PER_MINUTE"), "rate_limits.user_requests_per_minute");
    }

    #[test]
    fn an_s3_backend_without_a_bucket_is_refused_by_name() {
        let mut s = Settings::default();
        s.storage.backend = StorageBackend::S3;
        let err = s.validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("storage.s3_bucket") && err.contains("AGGIOS_STORAGE_S3_BUCKET"), "{err}");
    }

    #[test]
    fn a_base_domain_with_a_port_is_refused() {
        let mut s = Settings::default();
        s.server.base_domain = "aggios.app:8080".into();
        assert!(s.validate().is_err());
    }
}
