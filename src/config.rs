//! Configuration: read from the environment once at start, validated, then immutable.

use std::net::SocketAddr;
use std::time::Duration;

use crate::auth::client_ip::TrustedProxies;
use crate::auth::throttle::ThrottleSettings;
use crate::domain::user::{Email, Password};
use crate::http::HttpLimits;
use crate::store::{ConnectOptions, PoolSettings};
use crate::telemetry::LogFormat;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://tienda.db";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database: ConnectOptions,
    pub pool: PoolSettings,
    pub addr: SocketAddr,
    pub environment: Environment,
    pub http: HttpLimits,
    /// How long in-flight requests may run on after a shutdown signal.
    pub shutdown_grace: Duration,
    /// `TIENDA_SHUTDOWN_DRAIN_SECS`: after a shutdown signal, how long the instance keeps
    /// accepting while `/health/ready` says 503, and then, its listener closed, how long its open
    /// connections are still served (see `startup::Application::run_until`).
    pub shutdown_drain: Duration,
    pub log_format: LogFormat,
    /// The server secret (`TIENDA_JWT_SECRET`); keys for tokens and cursors derive from it.
    pub secret: Secret,
    pub auth: AuthSettings,
    /// `REDIS_URL`: shared login throttle (and cache) when set.
    pub redis_url: Option<String>,
    pub observability: ObservabilitySettings,
}

#[derive(Debug, Clone)]
pub struct ObservabilitySettings {
    /// `TIENDA_METRICS_ADDR`: serve `/metrics` on this separate listener instead of the API's.
    pub metrics_addr: Option<SocketAddr>,
    /// `TIENDA_METRICS_PUBLIC`: serve `/metrics` on the API's port too, even in production.
    pub metrics_public: bool,
    /// Products with stock above zero and below this count as low on stock.
    pub low_stock_below: i64,
    /// How often the business gauges are recomputed.
    pub business_metrics_every: Duration,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: export
    /// spans over OTLP/HTTP.
    pub otlp: bool,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// `TIENDA_PROTECT_READS`: product reads need a valid token too.
    pub protect_reads: bool,
    /// The first admin, created at start when missing.
    pub bootstrap_admin: Option<(Email, Password)>,
    pub trusted_proxies: TrustedProxies,
    pub throttle: ThrottleSettings,
    /// `TIENDA_HASH_CONCURRENCY`: password hashes running at once.
    pub hash_concurrency: usize,
    /// `TIENDA_SESSION_MAX_DAYS`: how long a login's refresh tokens live at most, refreshed or not.
    pub session_max_age: Duration,
}

/// Key material that never shows up in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret {
    bytes: Vec<u8>,
    /// Generated at start because none was configured: dies with the process.
    pub ephemeral: bool,
}

impl Secret {
    pub const MIN_LEN: usize = 32;

    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.bytes.len())
    }
}

/// A setting that cannot be used; the message names the variable and the problem.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn invalid(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup`, so tests can configure without touching the process
    /// environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());

        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let database = ConnectOptions::parse(&database_url).map_err(|e| invalid("DATABASE_URL", e))?;

        let addr = match (get("TIENDA_ADDR"), get("PORT")) {
            (Some(addr), _) => addr.parse().map_err(|_| {
                invalid(
                    "TIENDA_ADDR",
                    format!("`{addr}` is not an address such as 127.0.0.1:8080"),
                )
            })?,
            (None, Some(port)) => {
                let port: u16 = port
                    .parse()
                    .map_err(|_| invalid("PORT", format!("`{port}` is not a port number")))?;
                SocketAddr::from(([0, 0, 0, 0], port))
            }
            (None, None) => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };

        let environment = match get("TIENDA_ENV").as_deref() {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(other) => {
                return Err(invalid(
                    "TIENDA_ENV",
                    format!("`{other}` is not development or production"),
                ));
            }
        };

        let number = |key: &'static str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
            match get(key) {
                None => Ok(default),
                Some(text) => match text.parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(n),
                    _ => Err(invalid(
                        key,
                        format!("`{text}` is not a whole number in {min}..={max}"),
                    )),
                },
            }
        };
        let max_connections = number("TIENDA_DB_MAX_CONNECTIONS", 10, 1, 1000)? as u32;
        let acquire_timeout = Duration::from_secs(number("TIENDA_DB_TIMEOUT_SECS", 5, 1, 600)?);
        let body_limit = number("TIENDA_BODY_LIMIT_BYTES", 1024 * 1024, 1024, 1 << 30)? as usize;
        let request_timeout = Duration::from_secs(number("TIENDA_REQUEST_TIMEOUT_SECS", 30, 1, 3600)?);
        // Defaults to the request timeout: past it, nobody waits for the answer any more.
        let statement_timeout = Duration::from_millis(number(
            "TIENDA_DB_STATEMENT_TIMEOUT_MS",
            request_timeout.as_millis() as u64,
            1,
            3_600_000,
        )?);
        let shutdown_grace = Duration::from_secs(number("TIENDA_SHUTDOWN_GRACE_SECS", 30, 0, 3600)?);
        let shutdown_drain = Duration::from_secs(number("TIENDA_SHUTDOWN_DRAIN_SECS", 0, 0, 300)?);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let header_timeout = Duration::from_secs(number("TIENDA_HEADER_TIMEOUT_SECS", 10, 1, 3600)?);
        let idle_timeout = Duration::from_secs(number("TIENDA_IDLE_TIMEOUT_SECS", 60, 1, 3600)?);
        let max_open_connections = number("TIENDA_MAX_CONNECTIONS", 4096, 1, 1_000_000)? as usize;
        let search_concurrency = number("TIENDA_SEARCH_CONCURRENCY", 2 * cores, 1, 100_000)? as usize;
        let search_parts = match get("TIENDA_SEARCH_PARTS") {
            None => None,
            Some(_) => Some(number("TIENDA_SEARCH_PARTS", 1, 1, 16)? as usize),
        };
        let search_split_min_id = number("TIENDA_SEARCH_SPLIT_MIN_ID", 10_000, 0, i64::MAX as u64)? as i64;

        let log_format = match get("TIENDA_LOG_FORMAT").as_deref() {
            None => LogFormat::detect(),
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(invalid(
                    "TIENDA_LOG_FORMAT",
                    format!("`{other}` is not json or pretty"),
                ));
            }
        };

        let secret = match (get("TIENDA_JWT_SECRET"), environment) {
            (Some(text), _) if text.len() >= Secret::MIN_LEN => Secret {
                bytes: text.into_bytes(),
                ephemeral: false,
            },
            (Some(_), Environment::Production) => {
                return Err(invalid(
                    "TIENDA_JWT_SECRET",
                    "must be at least 32 bytes in production",
                ));
            }
            (None, Environment::Production) => {
                return Err(invalid(
                    "TIENDA_JWT_SECRET",
                    "must be set in production (at least 32 bytes)",
                ));
            }
            (Some(_), Environment::Development) => {
                return Err(invalid(
                    "TIENDA_JWT_SECRET",
                    "must be at least 32 bytes (or unset in development)",
                ));
            }
            (None, Environment::Development) => {
                let mut bytes = vec![0u8; 32];
                getrandom::fill(&mut bytes).map_err(|e| {
                    invalid(
                        "TIENDA_JWT_SECRET",
                        format!("cannot generate a random secret: {e}"),
                    )
                })?;
                Secret {
                    bytes,
                    ephemeral: true,
                }
            }
        };

        let flag = |key: &'static str| -> Result<bool, ConfigError> {
            match get(key).as_deref() {
                None | Some("false") | Some("0") => Ok(false),
                Some("true") | Some("1") => Ok(true),
                Some(other) => Err(invalid(key, format!("`{other}` is not true or false"))),
            }
        };
        let bootstrap_admin = match (get("TIENDA_ADMIN_EMAIL"), lookup("TIENDA_ADMIN_PASSWORD")) {
            (None, None) => None,
            (Some(email), Some(password)) => Some((
                Email::parse(&email).map_err(|e| invalid("TIENDA_ADMIN_EMAIL", e.message))?,
                Password::new_password(password).map_err(|e| invalid("TIENDA_ADMIN_PASSWORD", e.message))?,
            )),
            (Some(_), None) => {
                return Err(invalid(
                    "TIENDA_ADMIN_PASSWORD",
                    "must be set with TIENDA_ADMIN_EMAIL",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "TIENDA_ADMIN_EMAIL",
                    "must be set with TIENDA_ADMIN_PASSWORD",
                ));
            }
        };
        let auth = AuthSettings {
            access_token_ttl: Duration::from_secs(number(
                "TIENDA_ACCESS_TOKEN_TTL_SECS",
                15 * 60,
                10,
                86_400,
            )?),
            refresh_token_ttl: Duration::from_secs(number(
                "TIENDA_REFRESH_TOKEN_TTL_SECS",
                30 * 86_400,
                60,
                365 * 86_400,
            )?),
            protect_reads: flag("TIENDA_PROTECT_READS")?,
            bootstrap_admin,
            trusted_proxies: TrustedProxies::parse(&get("TIENDA_TRUSTED_PROXIES").unwrap_or_default())
                .map_err(|e| invalid("TIENDA_TRUSTED_PROXIES", e))?,
            throttle: ThrottleSettings {
                window: Duration::from_secs(number("TIENDA_LOGIN_WINDOW_SECS", 15 * 60, 1, 86_400)?),
                max_failures_per_email: number("TIENDA_LOGIN_MAX_FAILURES_PER_EMAIL", 5, 1, 1_000_000)?,
                max_failures_per_client: number("TIENDA_LOGIN_MAX_FAILURES_PER_CLIENT", 20, 1, 1_000_000)?,
                registrations_per_hour: number("TIENDA_REGISTER_LIMIT_PER_HOUR", 100, 1, 1_000_000)?,
            },
            hash_concurrency: number("TIENDA_HASH_CONCURRENCY", cores, 1, 1024)? as usize,
            session_max_age: Duration::from_secs(86_400 * number("TIENDA_SESSION_MAX_DAYS", 90, 1, 3650)?),
        };
        let redis_url = match get("REDIS_URL") {
            None => None,
            Some(url) => {
                redis::Client::open(url.as_str()).map_err(|e| invalid("REDIS_URL", e.to_string()))?;
                Some(url)
            }
        };

        let metrics_addr = match get("TIENDA_METRICS_ADDR") {
            None => None,
            Some(addr) => Some(addr.parse().map_err(|_| {
                invalid(
                    "TIENDA_METRICS_ADDR",
                    format!("`{addr}` is not an address such as 127.0.0.1:9100"),
                )
            })?),
        };
        let observability = ObservabilitySettings {
            metrics_addr,
            metrics_public: flag("TIENDA_METRICS_PUBLIC")?,
            low_stock_below: number("TIENDA_LOW_STOCK_THRESHOLD", 5, 1, 2_147_483_647)? as i64,
            business_metrics_every: Duration::from_secs(number(
                "TIENDA_BUSINESS_METRICS_SECS",
                60,
                1,
                86_400,
            )?),
            otlp: get("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
                || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some(),
        };

        Ok(Config {
            observability,
            auth,
            redis_url,
            secret,
            database,
            pool: PoolSettings {
                max_connections,
                acquire_timeout,
                statement_timeout,
                search_parts,
                search_split_min_id,
            },
            addr,
            environment,
            http: HttpLimits {
                body_limit,
                request_timeout,
                header_timeout,
                idle_timeout,
                max_connections: max_open_connections,
                search_concurrency,
            },
            shutdown_grace,
            shutdown_drain,
            log_format,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_serve_sqlite_on_loopback() {
        let config = load(&[]).unwrap();
        assert_eq!(config.addr, "127.0.0.1:8080".parse().unwrap());
        assert!(matches!(config.database, ConnectOptions::Sqlite(_)));
        assert_eq!(config.http.body_limit, 1024 * 1024);
        assert_eq!(config.environment, Environment::Development);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(config.auth.hash_concurrency, cores);
        assert_eq!(config.http.search_concurrency, 2 * cores);
        assert_eq!(config.http.max_connections, 4096);
        assert_eq!(config.http.header_timeout, Duration::from_secs(10));
        assert_eq!(config.http.idle_timeout, Duration::from_secs(60));
        assert_eq!(config.auth.session_max_age, Duration::from_secs(90 * 86_400));
        assert_eq!(config.auth.throttle.registrations_per_hour, 100);
        assert!(!config.observability.metrics_public);
    }

    #[test]
    fn the_secret_is_random_in_development_and_required_in_production() {
        let a = load(&[]).unwrap().secret;
        let b = load(&[]).unwrap().secret;
        assert!(a.ephemeral && a.expose().len() == 32 && a.expose() != b.expose());
        let long = "s".repeat(32);
        let config = load(&[("TIENDA_ENV", "production"), ("TIENDA_JWT_SECRET", &long)]).unwrap();
        assert!(!config.secret.ephemeral);
        assert_eq!(config.secret.expose(), long.as_bytes());
        assert!(
            !format!("{config:?}").contains(&long),
            "Debug must not print the secret"
        );
    }

    #[test]
    fn port_binds_all_interfaces_as_on_heroku() {
        let config = load(&[("PORT", "5000")]).unwrap();
        assert_eq!(config.addr, "0.0.0.0:5000".parse().unwrap());
        let config = load(&[("PORT", "5000"), ("TIENDA_ADDR", "127.0.0.1:9000")]).unwrap();
        assert_eq!(config.addr, "127.0.0.1:9000".parse().unwrap());
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (pairs, variable) in [
            (vec![("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (vec![("TIENDA_ADDR", "nowhere")], "TIENDA_ADDR"),
            (vec![("PORT", "99999")], "PORT"),
            (vec![("TIENDA_ENV", "staging")], "TIENDA_ENV"),
            (vec![("TIENDA_BODY_LIMIT_BYTES", "-1")], "TIENDA_BODY_LIMIT_BYTES"),
            (vec![("TIENDA_LOG_FORMAT", "xml")], "TIENDA_LOG_FORMAT"),
            (vec![("TIENDA_ENV", "production")], "TIENDA_JWT_SECRET"),
            (vec![("TIENDA_PROTECT_READS", "yes")], "TIENDA_PROTECT_READS"),
            (
                vec![("TIENDA_ADMIN_EMAIL", "a@example.com")],
                "TIENDA_ADMIN_PASSWORD",
            ),
            (
                vec![
                    ("TIENDA_ADMIN_EMAIL", "nope"),
                    ("TIENDA_ADMIN_PASSWORD", "long enough"),
                ],
                "TIENDA_ADMIN_EMAIL",
            ),
            (
                vec![
                    ("TIENDA_ADMIN_EMAIL", "a@example.com"),
                    ("TIENDA_ADMIN_PASSWORD", "short"),
                ],
                "TIENDA_ADMIN_PASSWORD",
            ),
            (
                vec![("TIENDA_TRUSTED_PROXIES", "10.0.0.0/99")],
                "TIENDA_TRUSTED_PROXIES",
            ),
            (vec![("REDIS_URL", "nonsense")], "REDIS_URL"),
            (vec![("TIENDA_SEARCH_PARTS", "0")], "TIENDA_SEARCH_PARTS"),
            (
                vec![("TIENDA_SEARCH_SPLIT_MIN_ID", "-1")],
                "TIENDA_SEARCH_SPLIT_MIN_ID",
            ),
            (vec![("TIENDA_METRICS_ADDR", "9100")], "TIENDA_METRICS_ADDR"),
            (vec![("TIENDA_METRICS_PUBLIC", "maybe")], "TIENDA_METRICS_PUBLIC"),
            (vec![("TIENDA_HASH_CONCURRENCY", "0")], "TIENDA_HASH_CONCURRENCY"),
            (
                vec![("TIENDA_SEARCH_CONCURRENCY", "x")],
                "TIENDA_SEARCH_CONCURRENCY",
            ),
            (vec![("TIENDA_MAX_CONNECTIONS", "0")], "TIENDA_MAX_CONNECTIONS"),
            (
                vec![("TIENDA_HEADER_TIMEOUT_SECS", "0")],
                "TIENDA_HEADER_TIMEOUT_SECS",
            ),
            (
                vec![("TIENDA_IDLE_TIMEOUT_SECS", "-5")],
                "TIENDA_IDLE_TIMEOUT_SECS",
            ),
            (vec![("TIENDA_SESSION_MAX_DAYS", "0")], "TIENDA_SESSION_MAX_DAYS"),
            (
                vec![("TIENDA_REGISTER_LIMIT_PER_HOUR", "lots")],
                "TIENDA_REGISTER_LIMIT_PER_HOUR",
            ),
            (
                vec![("TIENDA_ENV", "production"), ("TIENDA_JWT_SECRET", "short")],
                "TIENDA_JWT_SECRET",
            ),
        ] {
            assert_eq!(load(&pairs).unwrap_err().variable, variable);
        }
    }
}
