//! Typed configuration.
//!
//! Every setting is read from an environment variable `PARLEY_<NAME>`; when `PARLEY_CONFIG`
//! names a TOML file, its keys (lower-case `<name>`) are defaults that env vars override.
//! The settings and their defaults are listed in the README.

use std::collections::HashMap;
use std::time::Duration;

/// Settings source: env vars over an optional TOML file.
#[derive(Debug, Clone, Default)]
pub struct Source {
    file: HashMap<String, String>,
}

/// A setting could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file named by `PARLEY_CONFIG` could not be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A setting has a value of the wrong shape.
    #[error("setting {name}: {reason}")]
    Invalid {
        /// `PARLEY_<NAME>`.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// A required setting is missing.
    #[error("setting {0} is required")]
    Missing(String),
}

impl Source {
    /// Reads `PARLEY_CONFIG` (if set) once.
    ///
    /// # Errors
    /// [`ConfigError::File`] when the file is unreadable or not a flat TOML table.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut file = HashMap::new();
        if let Ok(path) = std::env::var("PARLEY_CONFIG") {
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::File {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::File {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
            for (k, v) in table {
                let s = match v {
                    toml::Value::String(s) => s,
                    other => other.to_string(),
                };
                file.insert(k.to_ascii_lowercase(), s);
            }
        }
        Ok(Self { file })
    }

    /// The raw value of `name` (e.g. `"nats_url"` ↔ `PARLEY_NATS_URL`).
    pub fn get(&self, name: &str) -> Option<String> {
        std::env::var(format!("PARLEY_{}", name.to_ascii_uppercase()))
            .ok()
            .or_else(|| self.file.get(name).cloned())
    }

    /// `name` or `default`.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// A required setting.
    ///
    /// # Errors
    /// [`ConfigError::Missing`].
    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::Missing(format!("PARLEY_{}", name.to_ascii_uppercase())))
    }

    /// A number.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when the value does not parse.
    pub fn parse<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
                name: format!("PARLEY_{}", name.to_ascii_uppercase()),
                reason: e.to_string(),
            }),
        }
    }

    /// A duration given in milliseconds.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when the value is not a whole number.
    pub fn millis(&self, name: &str, default_ms: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.parse(name, default_ms)?))
    }
}

/// Settings every service shares.
#[derive(Debug, Clone)]
pub struct Common {
    /// `PARLEY_NATS_URL`, default `nats://127.0.0.1:4222`.
    pub nats_url: String,
    /// `PARLEY_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/parley`.
    pub database_url: String,
    /// `PARLEY_STREAM`: the JetStream stream holding the event log, default `PARLEY`.
    pub stream: String,
    /// `PARLEY_SUBJECT_ROOT`: first token of every subject, default `parley`.
    pub subject_root: String,
    /// `PARLEY_API_KEYS`: `key=tenant` pairs separated by commas.
    pub api_keys: String,
    /// `PARLEY_DB_POOL_SIZE`, default 32.
    pub db_pool_size: usize,
    /// `PARLEY_TOKEN_SECRET`: the secret user-token keys derive from (≥ 32 bytes); unset
    /// disables user tokens (see `platform::token`).
    pub token_secret: Option<String>,
    /// `PARLEY_HTTP_*`: the HTTP server's connection cap and timeouts.
    pub http: HttpSettings,
    /// `PARLEY_RATE_LIMIT_TENANT_PER_S` (100), `…_USER_SENDS_PER_S` (20),
    /// `…_USER_READS_PER_S` (60): the default quotas ([`crate::ratelimit`]; 0 = off).
    pub rate: crate::ratelimit::Defaults,
}

impl Common {
    /// Reads the shared settings.
    ///
    /// # Errors
    /// [`ConfigError`] for malformed values.
    pub fn load(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            nats_url: src.string("nats_url", "nats://127.0.0.1:4222"),
            database_url: src.string("database_url", "postgres://postgres@127.0.0.1:5432/parley"),
            stream: src.string("stream", "PARLEY"),
            subject_root: src.string("subject_root", "parley"),
            api_keys: src.string("api_keys", ""),
            db_pool_size: src.parse("db_pool_size", 32)?,
            token_secret: src.get("token_secret"),
            http: HttpSettings::load(src)?,
            rate: crate::ratelimit::Defaults {
                tenant_per_s: src.parse("rate_limit_tenant_per_s", 100)?,
                user_sends_per_s: src.parse("rate_limit_user_sends_per_s", 20)?,
                user_reads_per_s: src.parse("rate_limit_user_reads_per_s", 60)?,
            },
        })
    }
}

/// Limits of the HTTP server ([`crate::server`]; env `PARLEY_HTTP_*`, see the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// `PARLEY_HTTP_HEADER_TIMEOUT_MS`, default 10,000: longest wait for a request's head.
    pub header_timeout: Duration,
    /// `PARLEY_HTTP_BODY_TIMEOUT_MS`, default 30,000: longest read of a request body.
    pub body_timeout: Duration,
    /// `PARLEY_HTTP_IDLE_TIMEOUT_MS`, default 75,000: a connection with no byte read or
    /// written for this long is closed (above the 25 s WebSocket/SSE ping interval).
    pub idle_timeout: Duration,
    /// `PARLEY_HTTP_MAX_CONNECTIONS`, default: the process's open-file limit (raised to its
    /// hard limit at start) minus 256 (half of a limit under 512).
    pub max_connections: usize,
}

impl HttpSettings {
    /// Reads the settings.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for malformed values.
    pub fn load(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            header_timeout: src.millis("http_header_timeout_ms", 10_000)?,
            body_timeout: src.millis("http_body_timeout_ms", 30_000)?,
            idle_timeout: src.millis("http_idle_timeout_ms", 75_000)?,
            max_connections: src
                .parse("http_max_connections", default_max_connections())?
                .max(1),
        })
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
            max_connections: default_max_connections(),
        }
    }
}

/// The open-file limit after raising the soft limit to the hard one, minus 256 descriptors
/// kept for Postgres, NATS, logs and the listener (half of a limit under 512).
pub fn default_max_connections() -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    usize::try_from(limit.saturating_sub(256).max(limit / 2))
        .unwrap_or(usize::MAX)
        .max(1)
}
