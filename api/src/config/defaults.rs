//! The built-in defaults: what `aggios.example.toml` shows, and what a test
//! checks it against.

use std::{net::IpAddr, path::PathBuf};

use super::{
    AuthSettings, DatabaseSettings, Environment, LogSettings, PersistedQuerySettings, RateLimitSettings, RedisSettings, ServerSettings,
    Settings, StorageBackend, StorageSettings,
};

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            server: ServerSettings {
                host: IpAddr::from([127, 0, 0, 1]),
                port: 8080,
                base_domain: "localhost".into(),
                environment: Environment::Development,
                shutdown_grace_secs: 30,
                drain_secs: 0,
                tenant_cache_ttl_secs: 30,
                trusted_proxies: Vec::new(),
                header_read_timeout_secs: 10,
                idle_timeout_secs: 60,
                min_body_bytes_per_sec: 4096,
                body_grace_secs: 10,
                max_connections: 4096,
                cors_allowed_origins: Vec::new(),
                hsts_max_age_secs: 0,
                max_batch_operations: 10,
                planned_reads: true,
            },
            database: DatabaseSettings {
                url: None,
                migration_url: None,
                runtime_role: migration::RUNTIME_ROLE.into(),
                max_connections: 16,
                acquire_timeout_secs: 5,
                migrate_on_start: None,
                statement_timeout_ms: 10_000,
                lock_timeout_ms: 2_000,
                idle_in_transaction_timeout_ms: 30_000,
                replica_urls: Vec::new(),
                replica_max_lag_ms: 1_000,
            },
            redis: RedisSettings {
                url: None,
                key_prefix: "aggios".into(),
                pool_size: 16,
                timeout_ms: 500,
                breaker_cooldown_ms: 1_000,
            },
            storage: StorageSettings {
                backend: StorageBackend::Local,
                local_dir: None,
                s3_endpoint: None,
                s3_region: "us-east-1".into(),
                s3_bucket: None,
                s3_access_key_id: None,
                s3_secret_access_key: None,
                s3_path_style: true,
                s3_server_side_encryption: None,
                s3_kms_key_id: None,
                max_file_bytes: 2 * 1024 * 1024 * 1024,
                max_request_bytes: 2 * 1024 * 1024 * 1024 + 1024 * 1024,
                max_files_per_request: 10,
                max_concurrent_uploads: 32,
                url_ttl_secs: 300,
                sweep_interval_secs: 3600,
                sweep_grace_secs: 3600,
                upload_sweep_interval_secs: 60,
            },
            log: LogSettings { format: None, level: "info".into(), slow_statement_ms: 1000 },
            auth: AuthSettings {
                issuer: "aggios".into(),
                access_token_ttl_secs: 15 * 60,
                refresh_idle_ttl_secs: 7 * 24 * 3600,
                refresh_absolute_ttl_secs: 30 * 24 * 3600,
                keyring_file: None,
                argon2_memory_kib: 19_456,
                argon2_iterations: 2,
                argon2_parallelism: 1,
                hash_concurrency: None,
                login_failures_per_account_and_address: 5,
                login_failures_per_address: 50,
                login_failures_per_account: 20,
                login_window_secs: 15 * 60,
            },
            rate_limits: RateLimitSettings::default(),
            persisted_queries: PersistedQuerySettings::default(),
            limits: super::LimitsSettings::default(),
            subscriptions: super::SubscriptionSettings::default(),
            metrics: super::MetricsSettings::default(),
            tracing: super::TracingSettings::default(),
        }
    }
}
