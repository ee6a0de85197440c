//! Configuration: read from the environment once at start, validated, then immutable.
//!
//! A leaf of the crate: it names the settings types of the subsystems below it (store, auth,
//! logs) but nothing above it, so `http -> state -> config` never loops back.

mod sections;
mod vars;

use std::net::SocketAddr;
use std::time::Duration;

use crate::auth::client_ip::TrustedProxies;
use crate::auth::throttle::ThrottleSettings;
use crate::cache::CacheSettings;
use crate::domain::user::{Email, Password};
use crate::logs::LogFormat;
use crate::store::{ConnectOptions, PoolSettings};
use crate::webhooks::WebhookSettings;
use vars::Vars;

/// Where the data lives when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://tienda.db";

/// Development (lenient defaults) or production (secrets required, metrics private).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Lenient defaults for a developer's machine.
    Development,
    /// Secrets required, metrics private.
    Production,
}

/// Every setting, read once at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`.
    pub database: ConnectOptions,
    /// The database pool's size and timeouts.
    pub pool: PoolSettings,
    /// Where the API listens (`TIENDA_ADDR` or `PORT`).
    pub addr: SocketAddr,
    /// `TIENDA_ENV`.
    pub environment: Environment,
    /// Body size, timeouts and connection limits.
    pub http: HttpLimits,
    /// How long in-flight requests may run on after a shutdown signal.
    pub shutdown_grace: Duration,
    /// `TIENDA_SHUTDOWN_DRAIN_SECS`: after a shutdown signal, how long the instance keeps
    /// accepting while `/health/ready` says 503, and then, its listener closed, how long its open
    /// connections are still served (see `startup::Application::run_until`).
    pub shutdown_drain: Duration,
    /// `TIENDA_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// The server secret (`TIENDA_JWT_SECRET`); keys for tokens and cursors derive from it.
    pub secret: Secret,
    /// Tokens, logins and passwords.
    pub auth: AuthSettings,
    /// `REDIS_URL`: shared login throttle (and cache) when set.
    pub redis_url: Option<String>,
    /// Metrics and trace export.
    pub observability: ObservabilitySettings,
    /// `TIENDA_CACHE`, `TIENDA_CACHE_TTL_SECS`, `TIENDA_CACHE_MAX_MB`: the response cache.
    pub cache: CacheSettings,
    /// Background jobs, imports and exports.
    pub jobs: JobSettings,
    /// Webhook delivery.
    pub webhooks: WebhookSettings,
}

/// Background jobs, imports and exports.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// `TIENDA_WORKERS`: jobs `tienda serve` (or each `tienda worker`) runs at once; 0 in
    /// `serve` runs none.
    pub workers: usize,
    /// `TIENDA_JOB_LEASE_SECS`: how long a worker's hold on a job lasts without renewal.
    pub lease: Duration,
    /// `TIENDA_IMPORT_MAX_MB`, in bytes: the largest import upload.
    pub import_max_bytes: u64,
    /// `TIENDA_IMPORT_BATCH_ROWS`: rows an import writes per transaction; `None` for the
    /// engine's default ([`crate::jobs::runner::default_import_batch`]).
    pub import_batch: Option<usize>,
    /// `TIENDA_EXPORT_TTL_HOURS`: how long an export's file is served.
    pub export_ttl: Duration,
    /// How long an idle worker waits before looking for work again (`TIENDA_JOB_POLL_MS`).
    pub poll: Duration,
    /// `TIENDA_PURGE_INTERVAL_SECS` (default 3600): how often housekeeping deletes what has
    /// expired (`jobs::purge_once`).
    pub purge_every: Duration,
}

/// Limits of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// `TIENDA_BODY_LIMIT_BYTES`: the largest request body read.
    pub body_limit: usize,
    /// `TIENDA_REQUEST_TIMEOUT_SECS`: a request still running after this is answered 408.
    pub request_timeout: Duration,
    /// A request head must arrive whole within this (`TIENDA_HEADER_TIMEOUT_SECS`).
    pub header_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Connections open at once (`TIENDA_MAX_CONNECTIONS`); more wait in the backlog.
    pub max_connections: usize,
    /// Relevance searches running at once (`TIENDA_SEARCH_CONCURRENCY`).
    pub search_concurrency: usize,
}

/// Metrics and tracing export.
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

/// Tokens, bootstrap admin, proxies, throttling and hashing.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `TIENDA_ACCESS_TOKEN_TTL_SECS`.
    pub access_token_ttl: Duration,
    /// `TIENDA_REFRESH_TOKEN_TTL_SECS`.
    pub refresh_token_ttl: Duration,
    /// `TIENDA_PROTECT_READS`: product reads need a valid token too.
    pub protect_reads: bool,
    /// The first admin, created at start when missing.
    pub bootstrap_admin: Option<(Email, Password)>,
    /// `TIENDA_TRUSTED_PROXIES`: whose forwarded headers name the client.
    pub trusted_proxies: TrustedProxies,
    /// Login and registration limits.
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
    /// The shortest secret accepted, in bytes.
    pub const MIN_LEN: usize = 32;

    /// The key material, for deriving keys; never log it.
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
    /// The variable that holds the bad value.
    pub variable: &'static str,
    /// What is wrong with it.
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
        let vars = Vars::new(&lookup);
        let environment = sections::environment(&vars)?;
        let http = sections::http_limits(&vars)?;
        let (database, pool) = sections::database(&vars, http.request_timeout)?;
        let redis_url = sections::redis_url(&vars)?;
        let cache = sections::cache(&vars, &database, redis_url.is_some())?;
        Ok(Config {
            database,
            pool,
            addr: sections::listen_addr(&vars)?,
            environment,
            shutdown_grace: vars.secs("TIENDA_SHUTDOWN_GRACE_SECS", 30, 0, 3600)?,
            shutdown_drain: vars.secs("TIENDA_SHUTDOWN_DRAIN_SECS", 0, 0, 300)?,
            log_format: sections::log_format(&vars)?,
            secret: sections::secret(&vars, environment)?,
            auth: sections::auth(&vars)?,
            redis_url,
            cache,
            observability: sections::observability(&vars)?,
            jobs: sections::jobs(&vars)?,
            webhooks: sections::webhooks(&vars, environment)?,
            http,
        })
    }
}

#[cfg(test)]
mod tests;
