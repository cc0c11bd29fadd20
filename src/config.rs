//! Settings: defaults, then an optional `roster.toml`, then the environment.
//!
//! Every setting has a default that runs with no configuration at all
//! (SQLite and files under `./data/`). Tests build a `Config` directly.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The effective settings of one Roster process.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    /// Base of links in emails; never taken from a request's Host header.
    pub public_url: String,
    /// HMAC key for JWTs and one-time tokens; generated and kept in
    /// `data_dir` when unset.
    pub secret_key: Option<String>,
    pub database_url: Option<String>,
    pub database_max_connections: u32,
    pub smtp_url: Option<String>,
    pub email_from: String,
    pub activation_url: String,
    pub password_reset_url: String,
    pub access_token_lifetime: u64,
    pub refresh_token_lifetime: u64,
    pub rotate_refresh_tokens: bool,
    pub activation_token_lifetime: u64,
    pub password_reset_token_lifetime: u64,
    pub login_rate_per_minute: u32,
    pub login_failures_per_account: u32,
    pub reset_emails_per_hour: u32,
    pub trusted_proxies: Vec<IpAddr>,
    pub max_body_bytes: usize,
    pub max_upload_bytes: usize,
    /// Largest accepted image, per side and in total pixels (decompression
    /// bombs declare huge dimensions in a tiny file).
    pub max_image_side: u32,
    pub max_image_pixels: u64,
    /// Lifetime of signed download links, in seconds.
    pub file_url_lifetime: u64,
    /// S3-compatible object storage; files stay on local disk under
    /// `data_dir/files` unless a bucket is set.
    pub s3_bucket: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
    pub password_min_length: usize,
    pub password_max_length: usize,
    pub password_check_common: bool,
    pub password_check_similarity: bool,
    pub password_hash_concurrency: usize,
    /// Seconds a request waits for its password hash before a 503.
    pub password_hash_wait_secs: u64,
    pub header_read_timeout_secs: u64,
    /// A request body may pause at most `body_idle_timeout_secs` between
    /// pieces, and after that long must average `body_min_rate` bytes a
    /// second: slow uploads are fine, a client that stalls or trickles is
    /// cut off with 408 (as Kestrel's minimum data rate does).
    pub body_idle_timeout_secs: u64,
    pub body_min_rate: u64,
    /// Requests handled at once; beyond it the server answers 503 at once
    /// instead of queueing without bound.
    pub max_concurrent_requests: usize,
    /// How long a request waits for a database connection before 503.
    pub database_acquire_timeout_secs: u64,
    /// SQLite's `synchronous`: FULL (the default) keeps every acknowledged
    /// write across a power loss; NORMAL only across a process crash.
    pub sqlite_synchronous_full: bool,
    /// SQLite's memory (page caches of all connections together, and the
    /// working memory of queries), in MiB: a soft limit, beyond which SQLite
    /// reuses cache pages instead of allocating more.
    pub sqlite_memory_mib: u64,
    /// After SIGTERM: seconds `/readyz` answers 503 while requests are still
    /// served (so a load balancer stops sending new ones), then seconds the
    /// in-flight requests get to finish.
    pub shutdown_delay_secs: u64,
    pub drain_timeout_secs: u64,
    pub outbox_poll_secs: u64,
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON when stderr is not a terminal, text otherwise.
    Auto,
    Json,
    Text,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8000".into(),
            data_dir: PathBuf::from("data"),
            public_url: "http://127.0.0.1:8000".into(),
            secret_key: None,
            database_url: None,
            database_max_connections: default_pool_size(),
            smtp_url: None,
            email_from: "Roster <noreply@localhost>".into(),
            activation_url: "{public_url}/activate/{uid}/{token}".into(),
            password_reset_url: "{public_url}/password/reset/confirm/{uid}/{token}".into(),
            access_token_lifetime: 300,
            refresh_token_lifetime: 86_400,
            rotate_refresh_tokens: false,
            activation_token_lifetime: 3 * 86_400,
            password_reset_token_lifetime: 3_600,
            login_rate_per_minute: 30,
            login_failures_per_account: 10,
            reset_emails_per_hour: 3,
            trusted_proxies: Vec::new(),
            max_body_bytes: 1024 * 1024,
            max_upload_bytes: 10 * 1024 * 1024,
            max_image_side: 10_000,
            max_image_pixels: 40_000_000,
            file_url_lifetime: 300,
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            password_min_length: 8,
            password_max_length: 128,
            password_check_common: true,
            password_check_similarity: true,
            password_hash_concurrency: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            password_hash_wait_secs: 2,
            header_read_timeout_secs: 10,
            body_idle_timeout_secs: 10,
            body_min_rate: 1024,
            max_concurrent_requests: 1024,
            database_acquire_timeout_secs: 3,
            sqlite_synchronous_full: true,
            sqlite_memory_mib: 40,
            shutdown_delay_secs: 0,
            drain_timeout_secs: 25,
            outbox_poll_secs: 5,
            log_format: LogFormat::Auto,
        }
    }
}

/// The database pool's default size: twice the cores this process may run
/// on, at least 4 and at most 8. On the benchmark's two cores, with
/// PostgreSQL beside Roster, 8 connections were 8 busy backends taking
/// turns on a shared core: 4 cut the departments page's p99 from 10.9-12.4
/// to 8.0-9.0 ms and served more requests, not fewer (`bench/README.md`,
/// Round 16). A database on a larger machine of its own wants a size set
/// for its cores (`ROSTER_DATABASE_MAX_CONNECTIONS`).
fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * cores).clamp(4, 8) as u32
}

/// One setting: its environment name, its `roster.toml` key, and whether it
/// is a secret (masked by `roster config`).
struct Setting {
    env: &'static str,
    key: &'static str,
    secret: bool,
}

const SETTINGS: &[Setting] = &[
    Setting {
        env: "ROSTER_LISTEN",
        key: "listen",
        secret: false,
    },
    Setting {
        env: "ROSTER_DATA_DIR",
        key: "data_dir",
        secret: false,
    },
    Setting {
        env: "ROSTER_PUBLIC_URL",
        key: "public_url",
        secret: false,
    },
    Setting {
        env: "ROSTER_SECRET_KEY",
        key: "secret_key",
        secret: true,
    },
    Setting {
        env: "DATABASE_URL",
        key: "database_url",
        secret: true,
    },
    Setting {
        env: "ROSTER_DATABASE_MAX_CONNECTIONS",
        key: "database_max_connections",
        secret: false,
    },
    Setting {
        env: "SMTP_URL",
        key: "smtp_url",
        secret: true,
    },
    Setting {
        env: "ROSTER_EMAIL_FROM",
        key: "email_from",
        secret: false,
    },
    Setting {
        env: "ROSTER_ACTIVATION_URL",
        key: "activation_url",
        secret: false,
    },
    Setting {
        env: "ROSTER_PASSWORD_RESET_URL",
        key: "password_reset_url",
        secret: false,
    },
    Setting {
        env: "ROSTER_ACCESS_TOKEN_LIFETIME",
        key: "access_token_lifetime",
        secret: false,
    },
    Setting {
        env: "ROSTER_REFRESH_TOKEN_LIFETIME",
        key: "refresh_token_lifetime",
        secret: false,
    },
    Setting {
        env: "ROSTER_ROTATE_REFRESH_TOKENS",
        key: "rotate_refresh_tokens",
        secret: false,
    },
    Setting {
        env: "ROSTER_ACTIVATION_TOKEN_LIFETIME",
        key: "activation_token_lifetime",
        secret: false,
    },
    Setting {
        env: "ROSTER_PASSWORD_RESET_TOKEN_LIFETIME",
        key: "password_reset_token_lifetime",
        secret: false,
    },
    Setting {
        env: "ROSTER_LOGIN_RATE_PER_MINUTE",
        key: "login_rate_per_minute",
        secret: false,
    },
    Setting {
        env: "ROSTER_LOGIN_FAILURES_PER_ACCOUNT",
        key: "login_failures_per_account",
        secret: false,
    },
    Setting {
        env: "ROSTER_RESET_EMAILS_PER_HOUR",
        key: "reset_emails_per_hour",
        secret: false,
    },
    Setting {
        env: "ROSTER_TRUSTED_PROXIES",
        key: "trusted_proxies",
        secret: false,
    },
    Setting {
        env: "ROSTER_MAX_BODY_BYTES",
        key: "max_body_bytes",
        secret: false,
    },
    Setting {
        env: "ROSTER_MAX_UPLOAD_BYTES",
        key: "max_upload_bytes",
        secret: false,
    },
    Setting {
        env: "ROSTER_MAX_IMAGE_SIDE",
        key: "max_image_side",
        secret: false,
    },
    Setting {
        env: "ROSTER_MAX_IMAGE_PIXELS",
        key: "max_image_pixels",
        secret: false,
    },
    Setting {
        env: "ROSTER_FILE_URL_LIFETIME",
        key: "file_url_lifetime",
        secret: false,
    },
    Setting {
        env: "S3_BUCKET",
        key: "s3_bucket",
        secret: false,
    },
    Setting {
        env: "S3_ENDPOINT",
        key: "s3_endpoint",
        secret: false,
    },
    Setting {
        env: "S3_REGION",
        key: "s3_region",
        secret: false,
    },
    Setting {
        env: "S3_ACCESS_KEY_ID",
        key: "s3_access_key_id",
        secret: false,
    },
    Setting {
        env: "S3_SECRET_ACCESS_KEY",
        key: "s3_secret_access_key",
        secret: true,
    },
    Setting {
        env: "ROSTER_PASSWORD_MIN_LENGTH",
        key: "password_min_length",
        secret: false,
    },
    Setting {
        env: "ROSTER_PASSWORD_MAX_LENGTH",
        key: "password_max_length",
        secret: false,
    },
    Setting {
        env: "ROSTER_PASSWORD_CHECK_COMMON",
        key: "password_check_common",
        secret: false,
    },
    Setting {
        env: "ROSTER_PASSWORD_CHECK_SIMILARITY",
        key: "password_check_similarity",
        secret: false,
    },
    Setting {
        env: "ROSTER_PASSWORD_HASH_CONCURRENCY",
        key: "password_hash_concurrency",
        secret: false,
    },
    Setting {
        env: "ROSTER_PASSWORD_HASH_WAIT",
        key: "password_hash_wait",
        secret: false,
    },
    Setting {
        env: "ROSTER_HEADER_READ_TIMEOUT",
        key: "header_read_timeout",
        secret: false,
    },
    Setting {
        env: "ROSTER_BODY_IDLE_TIMEOUT",
        key: "body_idle_timeout",
        secret: false,
    },
    Setting {
        env: "ROSTER_BODY_MIN_RATE",
        key: "body_min_rate",
        secret: false,
    },
    Setting {
        env: "ROSTER_MAX_CONCURRENT_REQUESTS",
        key: "max_concurrent_requests",
        secret: false,
    },
    Setting {
        env: "ROSTER_DATABASE_ACQUIRE_TIMEOUT",
        key: "database_acquire_timeout",
        secret: false,
    },
    Setting {
        env: "ROSTER_SQLITE_SYNCHRONOUS",
        key: "sqlite_synchronous",
        secret: false,
    },
    Setting {
        env: "ROSTER_SQLITE_MEMORY_MIB",
        key: "sqlite_memory_mib",
        secret: false,
    },
    Setting {
        env: "ROSTER_SHUTDOWN_DELAY",
        key: "shutdown_delay",
        secret: false,
    },
    Setting {
        env: "ROSTER_DRAIN_TIMEOUT",
        key: "drain_timeout",
        secret: false,
    },
    Setting {
        env: "ROSTER_OUTBOX_POLL_SECONDS",
        key: "outbox_poll_seconds",
        secret: false,
    },
    Setting {
        env: "ROSTER_LOG_FORMAT",
        key: "log_format",
        secret: false,
    },
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {err}")]
    Read { path: String, err: String },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then `roster.toml` (or the file `ROSTER_CONFIG` names), then
    /// the environment.
    pub fn load() -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        let explicit = std::env::var("ROSTER_CONFIG").ok();
        let path = explicit.clone().unwrap_or_else(|| "roster.toml".into());
        if Path::new(&path).exists() || explicit.is_some() {
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Read {
                path: path.clone(),
                err: e.to_string(),
            })?;
            let table: toml::Table = text
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("{path}: {e}")))?;
            for (key, value) in table {
                let value = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Array(items) => items
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                if !SETTINGS.iter().any(|s| s.key == key) {
                    return Err(ConfigError::Invalid(format!(
                        "{path}: unknown setting {key:?}"
                    )));
                }
                cfg.set(&key, &value)?;
            }
        }
        for s in SETTINGS {
            if let Ok(value) = std::env::var(s.env) {
                cfg.set(s.key, &value)?;
            }
        }
        Ok(cfg)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
            v.trim()
                .parse()
                .map_err(|_| ConfigError::Invalid(format!("{key}: {v:?} is not a valid number")))
        }
        fn flag(key: &str, v: &str) -> Result<bool, ConfigError> {
            match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" | "" => Ok(false),
                _ => Err(ConfigError::Invalid(format!(
                    "{key}: {v:?} is not true or false"
                ))),
            }
        }
        let opt = |v: &str| {
            if v.is_empty() {
                None
            } else {
                Some(v.to_string())
            }
        };
        match key {
            "listen" => self.listen = value.into(),
            "data_dir" => self.data_dir = PathBuf::from(value),
            "public_url" => self.public_url = value.trim_end_matches('/').into(),
            "secret_key" => self.secret_key = opt(value),
            "database_url" => self.database_url = opt(value),
            "database_max_connections" => self.database_max_connections = num(key, value)?,
            "smtp_url" => self.smtp_url = opt(value),
            "email_from" => self.email_from = value.into(),
            "activation_url" => self.activation_url = value.into(),
            "password_reset_url" => self.password_reset_url = value.into(),
            "access_token_lifetime" => self.access_token_lifetime = num(key, value)?,
            "refresh_token_lifetime" => self.refresh_token_lifetime = num(key, value)?,
            "rotate_refresh_tokens" => self.rotate_refresh_tokens = flag(key, value)?,
            "activation_token_lifetime" => self.activation_token_lifetime = num(key, value)?,
            "password_reset_token_lifetime" => {
                self.password_reset_token_lifetime = num(key, value)?
            }
            "login_rate_per_minute" => self.login_rate_per_minute = num(key, value)?,
            "login_failures_per_account" => self.login_failures_per_account = num(key, value)?,
            "reset_emails_per_hour" => self.reset_emails_per_hour = num(key, value)?,
            "trusted_proxies" => {
                self.trusted_proxies = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        s.parse().map_err(|_| {
                            ConfigError::Invalid(format!("{key}: {s:?} is not an IP address"))
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
            "max_body_bytes" => self.max_body_bytes = num(key, value)?,
            "max_upload_bytes" => self.max_upload_bytes = num(key, value)?,
            "max_image_side" => self.max_image_side = num(key, value)?,
            "max_image_pixels" => self.max_image_pixels = num(key, value)?,
            "file_url_lifetime" => self.file_url_lifetime = num::<u64>(key, value)?.max(1),
            "s3_bucket" => self.s3_bucket = opt(value),
            "s3_endpoint" => self.s3_endpoint = opt(value),
            "s3_region" => self.s3_region = value.into(),
            "s3_access_key_id" => self.s3_access_key_id = opt(value),
            "s3_secret_access_key" => self.s3_secret_access_key = opt(value),
            "password_min_length" => self.password_min_length = num(key, value)?,
            "password_max_length" => self.password_max_length = num(key, value)?,
            "password_check_common" => self.password_check_common = flag(key, value)?,
            "password_check_similarity" => self.password_check_similarity = flag(key, value)?,
            "password_hash_concurrency" => {
                self.password_hash_concurrency = num::<usize>(key, value)?.max(1)
            }
            "password_hash_wait" => self.password_hash_wait_secs = num::<u64>(key, value)?.max(1),
            "header_read_timeout" => self.header_read_timeout_secs = num(key, value)?,
            "body_idle_timeout" => self.body_idle_timeout_secs = num::<u64>(key, value)?.max(1),
            "body_min_rate" => self.body_min_rate = num(key, value)?,
            "max_concurrent_requests" => {
                self.max_concurrent_requests = num::<usize>(key, value)?.max(1)
            }
            "database_acquire_timeout" => {
                self.database_acquire_timeout_secs = num::<u64>(key, value)?.max(1)
            }
            "sqlite_synchronous" => {
                self.sqlite_synchronous_full = match value.trim().to_ascii_lowercase().as_str() {
                    "full" | "" => true,
                    "normal" => false,
                    _ => {
                        return Err(ConfigError::Invalid(format!(
                            "{key}: {value:?} is not full or normal"
                        )));
                    }
                }
            }
            "sqlite_memory_mib" => self.sqlite_memory_mib = num::<u64>(key, value)?.max(1),
            "shutdown_delay" => self.shutdown_delay_secs = num(key, value)?,
            "drain_timeout" => self.drain_timeout_secs = num(key, value)?,
            "outbox_poll_seconds" => self.outbox_poll_secs = num::<u64>(key, value)?.max(1),
            "log_format" => {
                self.log_format = match value.to_ascii_lowercase().as_str() {
                    "auto" | "" => LogFormat::Auto,
                    "json" => LogFormat::Json,
                    "text" => LogFormat::Text,
                    _ => {
                        return Err(ConfigError::Invalid(format!(
                            "{key}: {value:?} is not auto, json or text"
                        )));
                    }
                }
            }
            _ => return Err(ConfigError::Invalid(format!("unknown setting {key:?}"))),
        }
        Ok(())
    }

    /// `DATABASE_URL`, or the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("roster.db").display()),
        }
    }

    /// The scheme of absolute links in responses: that of the public URL.
    pub fn public_scheme(&self) -> &str {
        self.public_url.split("://").next().unwrap_or("http")
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    pub fn files_dir(&self) -> PathBuf {
        self.data_dir.join("files")
    }

    /// The effective settings as `NAME=value` lines, secrets masked.
    pub fn describe(&self) -> String {
        let value = |key: &str| -> String {
            match key {
                "listen" => self.listen.clone(),
                "data_dir" => self.data_dir.display().to_string(),
                "public_url" => self.public_url.clone(),
                "secret_key" => self
                    .secret_key
                    .clone()
                    .unwrap_or_else(|| "(generated, kept in data_dir)".into()),
                "database_url" => self.database_url(),
                "database_max_connections" => self.database_max_connections.to_string(),
                "smtp_url" => self
                    .smtp_url
                    .clone()
                    .unwrap_or_else(|| "(unset: mail goes to data_dir/outbox)".into()),
                "email_from" => self.email_from.clone(),
                "activation_url" => self.activation_url.clone(),
                "password_reset_url" => self.password_reset_url.clone(),
                "access_token_lifetime" => self.access_token_lifetime.to_string(),
                "refresh_token_lifetime" => self.refresh_token_lifetime.to_string(),
                "rotate_refresh_tokens" => self.rotate_refresh_tokens.to_string(),
                "activation_token_lifetime" => self.activation_token_lifetime.to_string(),
                "password_reset_token_lifetime" => self.password_reset_token_lifetime.to_string(),
                "login_rate_per_minute" => self.login_rate_per_minute.to_string(),
                "login_failures_per_account" => self.login_failures_per_account.to_string(),
                "reset_emails_per_hour" => self.reset_emails_per_hour.to_string(),
                "trusted_proxies" => self
                    .trusted_proxies
                    .iter()
                    .map(|ip| ip.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                "max_body_bytes" => self.max_body_bytes.to_string(),
                "max_upload_bytes" => self.max_upload_bytes.to_string(),
                "max_image_side" => self.max_image_side.to_string(),
                "max_image_pixels" => self.max_image_pixels.to_string(),
                "file_url_lifetime" => self.file_url_lifetime.to_string(),
                "s3_bucket" => self
                    .s3_bucket
                    .clone()
                    .unwrap_or_else(|| "(unset: files go to data_dir/files)".into()),
                "s3_endpoint" => self.s3_endpoint.clone().unwrap_or_default(),
                "s3_region" => self.s3_region.clone(),
                "s3_access_key_id" => self.s3_access_key_id.clone().unwrap_or_default(),
                "s3_secret_access_key" => self
                    .s3_secret_access_key
                    .as_ref()
                    .map(|_| "********".to_string())
                    .unwrap_or_default(),
                "password_min_length" => self.password_min_length.to_string(),
                "password_max_length" => self.password_max_length.to_string(),
                "password_check_common" => self.password_check_common.to_string(),
                "password_check_similarity" => self.password_check_similarity.to_string(),
                "password_hash_concurrency" => self.password_hash_concurrency.to_string(),
                "password_hash_wait" => self.password_hash_wait_secs.to_string(),
                "header_read_timeout" => self.header_read_timeout_secs.to_string(),
                "body_idle_timeout" => self.body_idle_timeout_secs.to_string(),
                "body_min_rate" => self.body_min_rate.to_string(),
                "max_concurrent_requests" => self.max_concurrent_requests.to_string(),
                "database_acquire_timeout" => self.database_acquire_timeout_secs.to_string(),
                "sqlite_synchronous" => if self.sqlite_synchronous_full {
                    "full"
                } else {
                    "normal"
                }
                .to_string(),
                "sqlite_memory_mib" => self.sqlite_memory_mib.to_string(),
                "shutdown_delay" => self.shutdown_delay_secs.to_string(),
                "drain_timeout" => self.drain_timeout_secs.to_string(),
                "outbox_poll_seconds" => self.outbox_poll_secs.to_string(),
                "log_format" => format!("{:?}", self.log_format).to_lowercase(),
                _ => String::new(),
            }
        };
        let mut out = String::new();
        for s in SETTINGS {
            let v = value(s.key);
            let shown = if s.secret { mask(s.key, &v) } else { v };
            out.push_str(&format!("{}={}\n", s.env, shown));
        }
        out
    }
}

/// Hides passwords in URLs and whole secret keys.
fn mask(key: &str, value: &str) -> String {
    if value.starts_with('(') {
        return value.to_string();
    }
    if key == "secret_key" {
        return "********".into();
    }
    // scheme://user:password@host -> scheme://user:********@host
    if let Some((scheme, rest)) = value.split_once("://")
        && let Some((creds, host)) = rest.rsplit_once('@')
    {
        let user = creds.split(':').next().unwrap_or("");
        return format!("{scheme}://{user}:********@{host}");
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords_in_urls() {
        assert_eq!(
            mask("database_url", "postgres://u:pw@h/db"),
            "postgres://u:********@h/db"
        );
        assert_eq!(mask("secret_key", "abc"), "********");
        assert_eq!(
            mask("database_url", "sqlite://data/roster.db"),
            "sqlite://data/roster.db"
        );
    }

    #[test]
    fn parses_settings() {
        let mut c = Config::default();
        c.set("trusted_proxies", "10.0.0.1, ::1").unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        c.set("rotate_refresh_tokens", "on").unwrap();
        assert!(c.rotate_refresh_tokens);
        assert!(c.set("access_token_lifetime", "five").is_err());
        assert!(c.set("nope", "1").is_err());
    }
}
