//! Checking settings at load: every refusal names the setting and its
//! variable, and says what a good value looks like.

use secrecy::ExposeSecret;

use super::{ConfigError, Settings, StorageBackend, invalid};

impl Settings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !crate::net::is_hostname(&self.server.base_domain) {
            return Err(invalid("server.base_domain", "must be a host name such as `aggios.app`"));
        }
        if let Some(url) = &self.database.url {
            check_db_url("database.url", url.expose_secret())?;
        }
        if let Some(url) = &self.database.migration_url {
            check_db_url("database.migration_url", url.expose_secret())?;
        }
        for url in &self.database.replica_urls {
            let url = url.expose_secret();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(invalid("database.replica_urls", "each must start with postgres:// or postgresql://"));
            }
        }
        if !self.database.replica_urls.is_empty() && !self.database_url().starts_with("postgres") {
            return Err(invalid("database.replica_urls", "read replicas need database.url to be PostgreSQL"));
        }
        let role = &self.database.runtime_role;
        if !role.is_empty()
            && !role.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(invalid("database.runtime_role", "use lower-case letters, digits and `_` only"));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if let Some(url) = &self.redis.url {
            let parsed = url::Url::parse(url.expose_secret())
                .map_err(|e| invalid("redis.url", format!("not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "redis" | "rediss") {
                return Err(invalid("redis.url", "must start with redis:// or rediss://"));
            }
        }
        if self.redis.key_prefix.is_empty() || self.redis.key_prefix.contains(char::is_whitespace) {
            return Err(invalid("redis.key_prefix", "must be non-empty, without spaces"));
        }
        if self.server.header_read_timeout_secs == 0 || self.server.header_read_timeout_secs > 15 {
            return Err(invalid("server.header_read_timeout_secs", "must be between 1 and 15 seconds"));
        }
        if self.server.idle_timeout_secs == 0 {
            return Err(invalid("server.idle_timeout_secs", "must be at least 1"));
        }
        if self.server.max_connections == 0 {
            return Err(invalid("server.max_connections", "must be at least 1"));
        }
        for proxy in &self.server.trusted_proxies {
            if crate::net::Cidr::parse(proxy).is_none() {
                return Err(invalid("server.trusted_proxies", format!("`{proxy}` is not an address or CIDR range such as 10.0.0.0/8")));
            }
        }
        for origin in &self.server.cors_allowed_origins {
            if !crate::net::is_web_origin(origin) {
                return Err(invalid(
                    "server.cors_allowed_origins",
                    format!("`{origin}` is not a web origin: write scheme, host and port only, such as https://app.example.com or http://localhost:3000"),
                ));
            }
        }
        if self.server.max_batch_operations == 0 {
            return Err(invalid("server.max_batch_operations", "must be at least 1"));
        }
        if self.redis.timeout_ms == 0 {
            return Err(invalid("redis.timeout_ms", "must be at least 1"));
        }
        if self.redis.pool_size == 0 {
            return Err(invalid("redis.pool_size", "must be at least 1"));
        }
        if self.storage.max_file_bytes == 0 || self.storage.max_file_bytes > self.storage.max_request_bytes {
            return Err(invalid("storage.max_file_bytes", "must be at least 1 and at most storage.max_request_bytes"));
        }
        if self.storage.max_files_per_request == 0 {
            return Err(invalid("storage.max_files_per_request", "must be at least 1"));
        }
        if !(1..=7 * 24 * 3600).contains(&self.storage.url_ttl_secs) {
            return Err(invalid("storage.url_ttl_secs", "must be between 1 second and 7 days (the S3 limit)"));
        }
        if self.storage.backend == StorageBackend::S3 {
            if self.storage.s3_bucket.as_deref().unwrap_or("").is_empty() {
                return Err(invalid("storage.s3_bucket", "is required when storage.backend is \"s3\""));
            }
            if let Some(endpoint) = &self.storage.s3_endpoint {
                url::Url::parse(endpoint)
                    .map_err(|e| invalid("storage.s3_endpoint", format!("not a URL: {e}")))?;
            }
            match self.storage.s3_server_side_encryption.as_deref() {
                None | Some("AES256") => {}
                Some("aws:kms") if self.storage.s3_kms_key_id.is_some() => {}
                Some("aws:kms") => {
                    return Err(invalid("storage.s3_kms_key_id", "is required when storage.s3_server_side_encryption is \"aws:kms\""));
                }
                Some(_) => {
                    return Err(invalid("storage.s3_server_side_encryption", "must be \"AES256\" or \"aws:kms\""));
                }
            }
            if self.storage.s3_access_key_id.is_some() != self.storage.s3_secret_access_key.is_some() {
                return Err(invalid(
                    "storage.s3_secret_access_key",
                    "set both storage.s3_access_key_id and storage.s3_secret_access_key, or neither",
                ));
            }
        }
        let a = &self.auth;
        if a.argon2_memory_kib < 19_456 {
            return Err(invalid("auth.argon2_memory_kib", "must be at least 19456 (OWASP minimum for argon2id)"));
        }
        if a.argon2_iterations < 2 {
            return Err(invalid("auth.argon2_iterations", "must be at least 2 (OWASP minimum for argon2id)"));
        }
        if a.argon2_parallelism < 1 {
            return Err(invalid("auth.argon2_parallelism", "must be at least 1"));
        }
        // Seconds-long tokens are for trying refresh flows in development.
        let shortest = if self.is_production() { 30 } else { 1 };
        if a.access_token_ttl_secs < shortest || a.access_token_ttl_secs > 24 * 3600 {
            return Err(invalid("auth.access_token_ttl_secs", format!("must be between {shortest} seconds and a day")));
        }
        if a.refresh_idle_ttl_secs == 0 || a.refresh_idle_ttl_secs > a.refresh_absolute_ttl_secs {
            return Err(invalid("auth.refresh_idle_ttl_secs", "must be positive and at most auth.refresh_absolute_ttl_secs"));
        }
        if a.hash_concurrency == Some(0) {
            return Err(invalid("auth.hash_concurrency", "must be at least 1"));
        }
        if a.issuer.is_empty() {
            return Err(invalid("auth.issuer", "must not be empty"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid("log.level", "not a valid filter such as `info` or `info,aggios=debug`"));
        }
        self.persisted_queries.validate()?;
        self.subscriptions.validate()?;
        self.tracing.validate()?;
        self.metrics.validate()?;
        self.limits.validate()?;
        Ok(())
    }
}

fn check_db_url(key: &'static str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite:") {
        Ok(())
    } else {
        Err(invalid(key, "must start with postgres://, postgresql:// or sqlite:"))
    }
}
