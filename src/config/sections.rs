//! One reader per subsystem: each takes the variables it owns and nothing else.

use std::net::SocketAddr;
use std::time::Duration;

use super::vars::{Vars, cores};
use super::{
    AuthSettings, ConfigError, Environment, HttpLimits, JobSettings, ObservabilitySettings, Secret, invalid,
};
use crate::auth::client_ip::TrustedProxies;
use crate::auth::throttle::ThrottleSettings;
use crate::cache::{CacheMode, CacheSettings};
use crate::domain::user::{Email, Password};
use crate::logs::LogFormat;
use crate::store::{ConnectOptions, PoolSettings};
use crate::webhooks::{WebhookRetention, WebhookSettings};

pub(super) fn environment(vars: &Vars) -> Result<Environment, ConfigError> {
    match vars.get("TIENDA_ENV").as_deref() {
        None | Some("development") => Ok(Environment::Development),
        Some("production") => Ok(Environment::Production),
        Some(other) => Err(invalid(
            "TIENDA_ENV",
            format!("`{other}` is not development or production"),
        )),
    }
}

/// `TIENDA_ADDR`, else `PORT` on every interface (as platforms such as Heroku set it), else
/// loopback port 8080.
pub(super) fn listen_addr(vars: &Vars) -> Result<SocketAddr, ConfigError> {
    if let Some(addr) = vars.addr("TIENDA_ADDR", "127.0.0.1:8080")? {
        return Ok(addr);
    }
    match vars.get("PORT") {
        Some(port) => {
            let port: u16 = port
                .parse()
                .map_err(|_| invalid("PORT", format!("`{port}` is not a port number")))?;
            Ok(SocketAddr::from(([0, 0, 0, 0], port)))
        }
        None => Ok(SocketAddr::from(([127, 0, 0, 1], 8080))),
    }
}

pub(super) fn http_limits(vars: &Vars) -> Result<HttpLimits, ConfigError> {
    Ok(HttpLimits {
        body_limit: vars.number("TIENDA_BODY_LIMIT_BYTES", 1024 * 1024, 1024, 1 << 30)? as usize,
        request_timeout: vars.secs("TIENDA_REQUEST_TIMEOUT_SECS", 30, 1, 3600)?,
        header_timeout: vars.secs("TIENDA_HEADER_TIMEOUT_SECS", 10, 1, 3600)?,
        idle_timeout: vars.secs("TIENDA_IDLE_TIMEOUT_SECS", 60, 1, 3600)?,
        max_connections: vars.number("TIENDA_MAX_CONNECTIONS", 4096, 1, 1_000_000)? as usize,
        search_concurrency: vars.number("TIENDA_SEARCH_CONCURRENCY", 2 * cores(), 1, 100_000)? as usize,
    })
}

/// The database and its pool. Statements default to the request timeout: past it, nobody waits
/// for the answer any more.
pub(super) fn database(
    vars: &Vars,
    request_timeout: Duration,
) -> Result<(ConnectOptions, PoolSettings), ConfigError> {
    let url = vars
        .get("DATABASE_URL")
        .unwrap_or_else(|| super::DEFAULT_DATABASE_URL.to_owned());
    let options = ConnectOptions::parse(&url).map_err(|e| invalid("DATABASE_URL", e.to_string()))?;
    let search_parts = match vars.get("TIENDA_SEARCH_PARTS") {
        None => None,
        Some(_) => Some(vars.number("TIENDA_SEARCH_PARTS", 1, 1, 16)? as usize),
    };
    let pool = PoolSettings {
        max_connections: vars.number("TIENDA_DB_MAX_CONNECTIONS", 10, 1, 1000)? as u32,
        acquire_timeout: vars.secs("TIENDA_DB_TIMEOUT_SECS", 5, 1, 600)?,
        statement_timeout: Duration::from_millis(vars.number(
            "TIENDA_DB_STATEMENT_TIMEOUT_MS",
            request_timeout.as_millis() as u64,
            1,
            3_600_000,
        )?),
        search_parts,
        search_split_min_id: vars.number("TIENDA_SEARCH_SPLIT_MIN_ID", 10_000, 0, i64::MAX as u64)? as i64,
        sqlite_mmap: true,
    };
    Ok((options, pool))
}

pub(super) fn log_format(vars: &Vars) -> Result<LogFormat, ConfigError> {
    match vars.get("TIENDA_LOG_FORMAT").as_deref() {
        None => Ok(LogFormat::detect()),
        Some("json") => Ok(LogFormat::Json),
        Some("pretty") => Ok(LogFormat::Pretty),
        Some(other) => Err(invalid(
            "TIENDA_LOG_FORMAT",
            format!("`{other}` is not json or pretty"),
        )),
    }
}

/// `TIENDA_JWT_SECRET`: required in production; in development a random one when unset.
pub(super) fn secret(vars: &Vars, environment: Environment) -> Result<Secret, ConfigError> {
    const KEY: &str = "TIENDA_JWT_SECRET";
    match (vars.get(KEY), environment) {
        (Some(text), _) if text.len() >= Secret::MIN_LEN => Ok(Secret {
            bytes: text.into_bytes(),
            ephemeral: false,
        }),
        (Some(_), Environment::Production) => Err(invalid(KEY, "must be at least 32 bytes in production")),
        (None, Environment::Production) => Err(invalid(KEY, "must be set in production (at least 32 bytes)")),
        (Some(_), Environment::Development) => Err(invalid(
            KEY,
            "must be at least 32 bytes (or unset in development)",
        )),
        (None, Environment::Development) => {
            let mut bytes = vec![0u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|e| invalid(KEY, format!("cannot generate a random secret: {e}")))?;
            Ok(Secret {
                bytes,
                ephemeral: true,
            })
        }
    }
}

pub(super) fn auth(vars: &Vars) -> Result<AuthSettings, ConfigError> {
    Ok(AuthSettings {
        access_token_ttl: vars.secs("TIENDA_ACCESS_TOKEN_TTL_SECS", 15 * 60, 10, 86_400)?,
        refresh_token_ttl: vars.secs("TIENDA_REFRESH_TOKEN_TTL_SECS", 30 * 86_400, 60, 365 * 86_400)?,
        protect_reads: vars.flag("TIENDA_PROTECT_READS")?,
        bootstrap_admin: bootstrap_admin(vars)?,
        trusted_proxies: TrustedProxies::parse(&vars.get("TIENDA_TRUSTED_PROXIES").unwrap_or_default())
            .map_err(|e| invalid("TIENDA_TRUSTED_PROXIES", e))?,
        throttle: ThrottleSettings {
            window: vars.secs("TIENDA_LOGIN_WINDOW_SECS", 15 * 60, 1, 86_400)?,
            max_failures_per_email: vars.number("TIENDA_LOGIN_MAX_FAILURES_PER_EMAIL", 5, 1, 1_000_000)?,
            max_failures_per_client: vars.number("TIENDA_LOGIN_MAX_FAILURES_PER_CLIENT", 20, 1, 1_000_000)?,
            registrations_per_hour: vars.number("TIENDA_REGISTER_LIMIT_PER_HOUR", 100, 1, 1_000_000)?,
        },
        hash_concurrency: vars.number("TIENDA_HASH_CONCURRENCY", cores(), 1, 1024)? as usize,
        session_max_age: Duration::from_secs(86_400 * vars.number("TIENDA_SESSION_MAX_DAYS", 90, 1, 3650)?),
    })
}

/// `TIENDA_ADMIN_EMAIL` and `TIENDA_ADMIN_PASSWORD`: both or neither.
fn bootstrap_admin(vars: &Vars) -> Result<Option<(Email, Password)>, ConfigError> {
    match (vars.get("TIENDA_ADMIN_EMAIL"), vars.raw("TIENDA_ADMIN_PASSWORD")) {
        (None, None) => Ok(None),
        (Some(email), Some(password)) => Ok(Some((
            Email::parse(&email).map_err(|e| invalid("TIENDA_ADMIN_EMAIL", e.message))?,
            Password::new_password(password).map_err(|e| invalid("TIENDA_ADMIN_PASSWORD", e.message))?,
        ))),
        (Some(_), None) => Err(invalid(
            "TIENDA_ADMIN_PASSWORD",
            "must be set with TIENDA_ADMIN_EMAIL",
        )),
        (None, Some(_)) => Err(invalid(
            "TIENDA_ADMIN_EMAIL",
            "must be set with TIENDA_ADMIN_PASSWORD",
        )),
    }
}

/// `REDIS_URL`, checked for form only: whether Redis answers is start-up's business.
pub(super) fn redis_url(vars: &Vars) -> Result<Option<String>, ConfigError> {
    match vars.get("REDIS_URL") {
        None => Ok(None),
        Some(url) => {
            redis::Client::open(url.as_str()).map_err(|e| invalid("REDIS_URL", e.to_string()))?;
            Ok(Some(url))
        }
    }
}

pub(super) fn observability(vars: &Vars) -> Result<ObservabilitySettings, ConfigError> {
    Ok(ObservabilitySettings {
        metrics_addr: vars.addr("TIENDA_METRICS_ADDR", "127.0.0.1:9100")?,
        metrics_public: vars.flag("TIENDA_METRICS_PUBLIC")?,
        low_stock_below: vars.number("TIENDA_LOW_STOCK_THRESHOLD", 5, 1, 2_147_483_647)? as i64,
        business_metrics_every: vars.secs("TIENDA_BUSINESS_METRICS_SECS", 60, 1, 86_400)?,
        otlp: vars.get("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || vars.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some(),
    })
}

pub(super) fn jobs(vars: &Vars) -> Result<JobSettings, ConfigError> {
    Ok(JobSettings {
        workers: vars.number("TIENDA_WORKERS", 1, 0, 256)? as usize,
        lease: vars.secs("TIENDA_JOB_LEASE_SECS", 30, 1, 3600)?,
        import_max_bytes: vars.number("TIENDA_IMPORT_MAX_MB", 512, 1, 1 << 20)? << 20,
        import_batch: match vars.get("TIENDA_IMPORT_BATCH_ROWS") {
            Some(_) => Some(vars.number("TIENDA_IMPORT_BATCH_ROWS", 0, 1, MAX_IMPORT_BATCH)? as usize),
            None => None,
        },
        export_ttl: Duration::from_secs(vars.number("TIENDA_EXPORT_TTL_HOURS", 24, 1, 24 * 365)? * 3600),
        poll: Duration::from_millis(vars.number("TIENDA_JOB_POLL_MS", 500, 10, 60_000)?),
        purge_every: vars.secs("TIENDA_PURGE_INTERVAL_SECS", 3600, 1, 86_400)?,
    })
}

/// `TIENDA_CACHE` (`auto`: local on SQLite, where one process owns the file; on PostgreSQL redis
/// when `REDIS_URL` is set, else off, as instances without a shared channel would serve each
/// other's stale answers), its time to live and its size.
pub(super) fn cache(
    vars: &Vars,
    database: &ConnectOptions,
    redis: bool,
) -> Result<CacheSettings, ConfigError> {
    const KEY: &str = "TIENDA_CACHE";
    let mode = match vars.get(KEY).as_deref() {
        None | Some("auto") => match (database, redis) {
            (ConnectOptions::Sqlite(_), _) => CacheMode::Local,
            (ConnectOptions::Postgres(_), true) => CacheMode::Redis,
            (ConnectOptions::Postgres(_), false) => CacheMode::Off,
        },
        Some("off") => CacheMode::Off,
        Some("local") => CacheMode::Local,
        Some("redis") if redis => CacheMode::Redis,
        Some("redis") => return Err(invalid(KEY, "redis needs REDIS_URL")),
        Some(other) => {
            return Err(invalid(
                KEY,
                format!("`{other}` is not auto, off, local or redis"),
            ));
        }
    };
    Ok(CacheSettings {
        mode,
        ttl: vars.secs("TIENDA_CACHE_TTL_SECS", 60, 1, 86_400)?,
        max_bytes: vars.number("TIENDA_CACHE_MAX_MB", 64, 1, 1 << 20)? << 20,
    })
}

/// The largest import batch: its insert binds 7 parameters a row, and SQLite takes at most
/// 32,766 in one statement.
const MAX_IMPORT_BATCH: u64 = 4_000;

/// Webhook delivery: targets, timeouts, the retry schedule (see `webhooks`).
pub(super) fn webhooks(vars: &Vars, environment: Environment) -> Result<WebhookSettings, ConfigError> {
    Ok(WebhookSettings {
        allow_private: vars.flag("TIENDA_WEBHOOK_ALLOW_PRIVATE")?,
        https_only: environment == Environment::Production,
        attempt_timeout: vars.secs("TIENDA_WEBHOOK_TIMEOUT_SECS", 10, 1, 60)?,
        retry_base: Duration::from_millis(vars.number(
            "TIENDA_WEBHOOK_RETRY_BASE_MS",
            30_000,
            1,
            3_600_000,
        )?),
        disable_after: hours_or_secs(
            vars,
            "TIENDA_WEBHOOK_DISABLE_AFTER_HOURS",
            72,
            "TIENDA_WEBHOOK_DISABLE_AFTER_SECS",
        )?,
        concurrency: vars.number("TIENDA_WEBHOOK_CONCURRENCY", 64, 1, 4096)? as usize,
        retention: WebhookRetention {
            delivered: retention(
                vars,
                "TIENDA_WEBHOOK_RETENTION_DAYS",
                7,
                "TIENDA_WEBHOOK_RETENTION_SECS",
            )?,
            dead: retention(
                vars,
                "TIENDA_WEBHOOK_DEAD_RETENTION_DAYS",
                30,
                "TIENDA_WEBHOOK_DEAD_RETENTION_SECS",
            )?,
        },
    })
}

/// A retention in days (`days_key`, at least one), or in seconds when `secs_key` is set: tests
/// cannot wait a day to see a row go.
fn retention(
    vars: &Vars,
    days_key: &'static str,
    default_days: u64,
    secs_key: &'static str,
) -> Result<Duration, ConfigError> {
    in_units_or_secs(vars, (days_key, 86_400, 3650), default_days, secs_key)
}

/// A duration in hours (`hours_key`, at least one), or in seconds when `secs_key` is set: tests
/// cannot wait three days to see an endpoint disabled.
fn hours_or_secs(
    vars: &Vars,
    hours_key: &'static str,
    default_hours: u64,
    secs_key: &'static str,
) -> Result<Duration, ConfigError> {
    in_units_or_secs(vars, (hours_key, 3600, 24 * 3650), default_hours, secs_key)
}

/// `key` counted in units of `unit_secs` (1 to `max_units`), unless `secs_key` is set.
fn in_units_or_secs(
    vars: &Vars,
    (key, unit_secs, max_units): (&'static str, u64, u64),
    default_units: u64,
    secs_key: &'static str,
) -> Result<Duration, ConfigError> {
    match vars.get(secs_key) {
        Some(_) => vars.secs(secs_key, 0, 1, max_units * unit_secs),
        None => Ok(Duration::from_secs(
            vars.number(key, default_units, 1, max_units)? * unit_secs,
        )),
    }
}
