//! Prometheus metrics: the recorder, every metric's name and help, and the samplers that keep
//! the gauges fresh without scanning the catalogue on every scrape.

#[path = "metrics_jobs.rs"]
pub mod jobs;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use ::metrics::{
    Label, SharedString, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use redis::aio::ConnectionManager;
use tokio::task::JoinHandle;

use crate::store::Store;

/// Requests answered, by method, route template, status class and exact status.
pub const HTTP_REQUESTS: &str = "tienda_http_requests_total";
/// Request latency histogram, by method, route template and status class.
pub const HTTP_DURATION: &str = "tienda_http_request_duration_seconds";
/// Requests being served right now.
pub const HTTP_IN_FLIGHT: &str = "tienda_http_requests_in_flight";
/// Database pool connections, by state (`idle`, `in_use`).
pub const POOL_CONNECTIONS: &str = "tienda_db_pool_connections";
/// The database pool's configured maximum.
pub const POOL_MAX: &str = "tienda_db_pool_max_connections";
/// Time spent waiting for a pooled connection.
pub const POOL_ACQUIRE: &str = "tienda_db_pool_acquire_duration_seconds";
/// Login attempts by outcome (success, failure, throttled).
pub const LOGIN_ATTEMPTS: &str = "tienda_login_attempts_total";
/// Products in the catalogue, read from the maintained counts at each scrape.
pub const PRODUCTS: &str = "tienda_products";
/// Units in stock across the catalogue.
pub const STOCK_UNITS: &str = "tienda_stock_units";
/// Products with no stock.
pub const OUT_OF_STOCK: &str = "tienda_products_out_of_stock";
/// Products at or under the low-stock threshold.
pub const LOW_STOCK: &str = "tienda_products_low_stock";
/// Stock adjustments committed, by direction.
pub const ADJUSTMENTS: &str = "tienda_stock_adjustments_total";
/// Units moved by stock adjustments, by direction.
pub const ADJUSTMENT_UNITS: &str = "tienda_stock_adjustment_units_total";
/// Webhook delivery attempts, by outcome (`delivered`, `retry`, `dead`).
pub const WEBHOOK_DELIVERIES: &str = "tienda_webhook_deliveries_total";
/// How long one webhook attempt took, answer or not.
pub const WEBHOOK_ATTEMPT_DURATION: &str = "tienda_webhook_attempt_duration_seconds";
/// Age of the oldest event still waiting for its first attempt.
pub const WEBHOOK_OUTBOX_LAG: &str = "tienda_webhook_outbox_lag_seconds";
/// Webhook endpoints disabled automatically after failing for too long.
pub const WEBHOOK_ENDPOINTS_DISABLED: &str = "tienda_webhook_endpoints_disabled_total";
/// Webhook rows deleted by housekeeping past their retention, by kind (`delivered`, `dead`,
/// `event`).
pub const WEBHOOK_ROWS_PURGED: &str = "tienda_webhook_rows_purged_total";
/// 1 when a dependency (database, Redis) answered its last probe, else 0.
pub const DEPENDENCY_UP: &str = "tienda_dependency_up";
/// Reads of cached routes, by cache (product, listing) and result (hit, miss, bypass).
pub const CACHE_REQUESTS: &str = "tienda_cache_requests_total";
/// Cache invalidations applied, by source (local: this instance's writes; remote: over Redis).
pub const CACHE_INVALIDATIONS: &str = "tienda_cache_invalidations_total";
/// Entries held in the response cache, by cache.
pub const CACHE_ENTRIES: &str = "tienda_cache_entries";
/// Always 1; the labels carry the version.
pub const BUILD_INFO: &str = "tienda_build_info";
// The standard process family (the names every Prometheus client library exports).
/// CPU seconds (user and system) used by the process.
pub const PROCESS_CPU: &str = "process_cpu_seconds_total";
/// Resident memory in bytes.
pub const PROCESS_RESIDENT: &str = "process_resident_memory_bytes";
/// Virtual memory in bytes.
pub const PROCESS_VIRTUAL: &str = "process_virtual_memory_bytes";
/// Open file descriptors.
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
/// The open-files limit.
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
/// Start time of the process, seconds since the epoch.
pub const PROCESS_START: &str = "process_start_time_seconds";

/// Latency buckets in seconds; 0.5 is one of them so the p99 alert's bound is measured exactly.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle (`None` if another recorder
/// was installed first, e.g. by an embedding program).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            Some(handle)
        })
        .clone()
}

fn describe() {
    jobs::describe();
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests served, by method, route template, status class and status code."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency, by method, route template and status class."
    );
    describe_gauge!(HTTP_IN_FLIGHT, "HTTP requests being served right now.");
    describe_gauge!(
        POOL_CONNECTIONS,
        "Database pool connections, by state (idle, in_use)."
    );
    describe_gauge!(POOL_MAX, "Database pool size limit.");
    describe_histogram!(
        POOL_ACQUIRE,
        Unit::Seconds,
        "Time to acquire a pooled database connection, sampled once a second."
    );
    describe_counter!(
        LOGIN_ATTEMPTS,
        "Login attempts, by outcome (success, failure, throttled)."
    );
    describe_gauge!(PRODUCTS, "Products in the catalogue.");
    describe_gauge!(STOCK_UNITS, "Units in stock over all products.");
    describe_gauge!(OUT_OF_STOCK, "Products with no stock.");
    describe_gauge!(
        LOW_STOCK,
        "Products with stock above zero and below the low-stock threshold."
    );
    describe_counter!(ADJUSTMENTS, "Stock adjustments applied, by direction (in, out).");
    describe_counter!(
        ADJUSTMENT_UNITS,
        "Units moved by stock adjustments, by direction (in, out)."
    );
    describe_gauge!(
        DEPENDENCY_UP,
        "1 when the last probe of a dependency (database, redis) succeeded, else 0."
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webhook delivery attempts, by outcome: delivered (2xx), retry (failed, tried again later), dead (failed, no attempt left)."
    );
    describe_histogram!(
        WEBHOOK_ATTEMPT_DURATION,
        Unit::Seconds,
        "Duration of one webhook delivery attempt, until the receiver's status or the failure."
    );
    describe_gauge!(
        WEBHOOK_OUTBOX_LAG,
        Unit::Seconds,
        "Age of the oldest webhook event not yet attempted (0 when none waits), sampled once a second by the delivery loop."
    );
    describe_counter!(
        WEBHOOK_ENDPOINTS_DISABLED,
        "Webhook endpoints disabled automatically after their attempts failed for too long."
    );
    describe_counter!(
        WEBHOOK_ROWS_PURGED,
        "Webhook rows deleted past their retention, by kind: delivered and dead deliveries, and event (outbox rows)."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the version label says which build runs.");
    describe_counter!(
        CACHE_REQUESTS,
        "Reads of cached routes by cache (product, listing) and result (hit, miss, bypass)."
    );
    describe_counter!(
        CACHE_INVALIDATIONS,
        "Response cache invalidations applied, by source (local write, remote instance)."
    );
    describe_gauge!(CACHE_ENTRIES, "Entries in the response cache, by cache.");
    describe_counter!(
        PROCESS_CPU,
        Unit::Seconds,
        "Total user and system CPU time spent."
    );
    describe_gauge!(PROCESS_RESIDENT, Unit::Bytes, "Resident memory size.");
    describe_gauge!(PROCESS_VIRTUAL, Unit::Bytes, "Virtual memory size.");
    describe_gauge!(PROCESS_OPEN_FDS, "Open file descriptors.");
    describe_gauge!(PROCESS_MAX_FDS, "The limit of open file descriptors.");
    describe_gauge!(
        PROCESS_START,
        Unit::Seconds,
        "Start time of the process since the Unix epoch."
    );
}

const METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "other",
];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// The status codes this server answers, each its own `status` label value; anything else
/// (none is expected) is `other`, so the label stays a small bounded set.
const STATUSES: [&str; 24] = [
    "101", "200", "201", "202", "204", "304", "400", "401", "403", "404", "405", "406", "408", "409", "410",
    "412", "413", "415", "422", "429", "500", "503", "504", "other",
];

fn status_index(status: u16) -> usize {
    let text = status.to_string();
    STATUSES[..STATUSES.len() - 1]
        .iter()
        .position(|known| *known == text)
        .unwrap_or(STATUSES.len() - 1)
}

/// The class of a status code: `2xx`, `4xx`, ...
pub fn status_class(status: u16) -> &'static str {
    STATUS_CLASSES[status_class_index(status)]
}

fn status_class_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// The standard methods by name; anything else is `other`.
fn method_index(method: &str) -> usize {
    METHODS[..9]
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len() - 1)
}

/// One route's request counters (per method and status code) and latency histograms (per method
/// and status class: a status label would multiply the buckets for little), looked up in the
/// recorder once and then reused: recording a request allocates nothing.
struct RouteMetrics {
    counters: [OnceLock<metrics::Counter>; METHODS.len() * STATUSES.len()],
    histograms: [OnceLock<metrics::Histogram>; METHODS.len() * STATUS_CLASSES.len()],
}

/// Keyed by route template (or `unmatched`), so the map is as small as the route table.
static HTTP_METRICS: LazyLock<RwLock<HashMap<String, Arc<RouteMetrics>>>> = LazyLock::new(Default::default);

fn route_metrics(route: &str) -> Arc<RouteMetrics> {
    let known = HTTP_METRICS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(route)
        .cloned();
    known.unwrap_or_else(|| {
        HTTP_METRICS
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(route.to_owned())
            .or_insert_with(|| {
                Arc::new(RouteMetrics {
                    counters: std::array::from_fn(|_| OnceLock::new()),
                    histograms: std::array::from_fn(|_| OnceLock::new()),
                })
            })
            .clone()
    })
}

/// Counts one answered request and records its latency; handles are cached per route, so the
/// hot path does no registry lookup.
pub fn record_http(method: &str, route: &str, status: u16, elapsed: Duration) {
    let (method, class, code) = (
        method_index(method),
        status_class_index(status),
        status_index(status),
    );
    let metrics = route_metrics(route);
    let labels = |with_code: bool| {
        let mut labels = vec![
            Label::new("method", SharedString::const_str(METHODS[method])),
            Label::new("route", route.to_owned()),
            Label::new("status_class", SharedString::const_str(STATUS_CLASSES[class])),
        ];
        if with_code {
            labels.push(Label::new("status", SharedString::const_str(STATUSES[code])));
        }
        labels
    };
    metrics.counters[method * STATUSES.len() + code]
        .get_or_init(|| counter!(HTTP_REQUESTS, labels(true).iter()))
        .increment(1);
    metrics.histograms[method * STATUS_CLASSES.len() + class]
        .get_or_init(|| histogram!(HTTP_DURATION, labels(false).iter()))
        .record(elapsed.as_secs_f64());
}

/// Samples the process family from /proc (Linux; elsewhere the family is absent). Called at
/// each scrape: a few small reads.
pub fn sample_process() {
    // /proc/self/stat counts CPU time in clock ticks: USER_HZ, 100 on every Linux ABI.
    const TICKS_PER_SECOND: f64 = 100.0;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
        if let (Some(user), Some(system)) = (field(14), field(15)) {
            // Whole seconds: the recorder's counters are integers (as with metrics-process).
            counter!(PROCESS_CPU).absolute(((user + system) / TICKS_PER_SECOND) as u64);
        }
        if let Some(bytes) = field(23) {
            gauge!(PROCESS_VIRTUAL).set(bytes);
        }
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("btime "))
                .and_then(|t| t.trim().parse::<f64>().ok())
        });
        if let (Some(boot), Some(start)) = (boot, field(22)) {
            gauge!(PROCESS_START).set(boot + start / TICKS_PER_SECOND);
        }
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let resident = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
        if let Some(kib) = resident {
            gauge!(PROCESS_RESIDENT).set(kib * 1024.0);
        }
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        gauge!(PROCESS_OPEN_FDS).set(entries.count() as f64);
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
        let max = limits
            .lines()
            .find(|line| line.starts_with("Max open files"))
            .and_then(|line| line.split_whitespace().nth(3))
            .and_then(|soft| soft.parse::<f64>().ok());
        if let Some(max) = max {
            gauge!(PROCESS_MAX_FDS).set(max);
        }
    }
}

/// The in-flight gauge's handle, looked up once rather than on every request.
pub fn http_in_flight(delta: f64) {
    static IN_FLIGHT: OnceLock<metrics::Gauge> = OnceLock::new();
    IN_FLIGHT.get_or_init(|| gauge!(HTTP_IN_FLIGHT)).increment(delta);
}

/// Counts one login attempt by its outcome.
pub fn login(outcome: &'static str) {
    counter!(LOGIN_ATTEMPTS, "outcome" => outcome).increment(1);
}

/// Counts one committed stock adjustment and the units it moved.
pub fn stock_adjusted(delta: i64) {
    let direction = if delta > 0 { "in" } else { "out" };
    counter!(ADJUSTMENTS, "direction" => direction).increment(1);
    counter!(ADJUSTMENT_UNITS, "direction" => direction).increment(delta.unsigned_abs());
}

/// The cache names and results, in the order of [`cache_request`]'s handles.
const CACHES: [&str; 2] = ["product", "listing"];
const CACHE_RESULTS: [&str; 3] = ["hit", "miss", "bypass"];

/// Counts one read of a cached route (handles kept: this is on every cached read).
pub fn cache_request(cache: &'static str, result: &'static str) {
    static HANDLES: OnceLock<Vec<metrics::Counter>> = OnceLock::new();
    let handles = HANDLES.get_or_init(|| {
        CACHES
            .iter()
            .flat_map(|c| {
                CACHE_RESULTS
                    .iter()
                    .map(move |r| counter!(CACHE_REQUESTS, "cache" => *c, "result" => *r))
            })
            .collect()
    });
    let at = |names: &[&str], name: &str| names.iter().position(|n| *n == name);
    match (at(&CACHES, cache), at(&CACHE_RESULTS, result)) {
        (Some(c), Some(r)) => handles[c * CACHE_RESULTS.len() + r].increment(1),
        _ => counter!(CACHE_REQUESTS, "cache" => cache, "result" => result).increment(1),
    }
}

/// Counts one invalidation applied, by source (`local`, `remote`).
pub fn cache_invalidation(source: &'static str) {
    counter!(CACHE_INVALIDATIONS, "source" => source).increment(1);
}

/// The number of entries a cache holds.
pub fn cache_entries(cache: &'static str, entries: u64) {
    gauge!(CACHE_ENTRIES, "cache" => cache).set(entries as f64);
}

/// Starts the cache's series at zero, so the dashboard and the alert see them before the first
/// read or write (called only when the cache is on).
pub fn cache_zero() {
    for cache in CACHES {
        for result in CACHE_RESULTS {
            counter!(CACHE_REQUESTS, "cache" => cache, "result" => result).increment(0);
        }
        gauge!(CACHE_ENTRIES, "cache" => cache).increment(0.0);
    }
    for source in ["local", "remote"] {
        counter!(CACHE_INVALIDATIONS, "source" => source).increment(0);
    }
}

/// Counts one webhook attempt by its outcome and records how long it took.
pub fn webhook_attempt(outcome: &'static str, elapsed: Duration) {
    counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
    histogram!(WEBHOOK_ATTEMPT_DURATION).record(elapsed.as_secs_f64());
}

/// Sets the outbox lag gauge.
pub fn webhook_outbox_lag(lag: Duration) {
    gauge!(WEBHOOK_OUTBOX_LAG).set(lag.as_secs_f64());
}

/// Counts one endpoint disabled for failing.
pub fn webhook_endpoint_disabled() {
    counter!(WEBHOOK_ENDPOINTS_DISABLED).increment(1);
}

/// Counts webhook rows of `kind` deleted past their retention.
pub fn webhook_rows_purged(kind: &'static str, rows: u64) {
    counter!(WEBHOOK_ROWS_PURGED, "kind" => kind).increment(rows);
}

/// Records whether a dependency answered its probe.
pub fn dependency(name: &'static str, up: bool) {
    gauge!(DEPENDENCY_UP, "dependency" => name).set(if up { 1.0 } else { 0.0 });
}

/// Starts the zero values of labelled counters, so dashboards and alerts see the series before
/// the first event.
pub fn zero_counters() {
    for outcome in ["success", "failure", "throttled"] {
        counter!(LOGIN_ATTEMPTS, "outcome" => outcome).absolute(0);
    }
    for direction in ["in", "out"] {
        counter!(ADJUSTMENTS, "direction" => direction).absolute(0);
        counter!(ADJUSTMENT_UNITS, "direction" => direction).absolute(0);
    }
    for outcome in ["delivered", "retry", "dead"] {
        counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).absolute(0);
    }
    counter!(WEBHOOK_ENDPOINTS_DISABLED).absolute(0);
    for kind in ["delivered", "dead", "event"] {
        counter!(WEBHOOK_ROWS_PURGED, "kind" => kind).absolute(0);
    }
    // Registered, so the histogram is exported (all buckets 0) before the first attempt.
    let _ = histogram!(WEBHOOK_ATTEMPT_DURATION);
    gauge!(WEBHOOK_OUTBOX_LAG).set(0.0);
    gauge!(HTTP_IN_FLIGHT).increment(0.0);
    jobs::zero();
}

/// Probes each dependency with a short timeout; true when all answered.
pub async fn probe(
    store: &Store,
    redis: Option<&ConnectionManager>,
    timeout: Duration,
) -> Vec<(&'static str, bool)> {
    let database = matches!(tokio::time::timeout(timeout, store.ping()).await, Ok(Ok(())));
    dependency("database", database);
    let mut results = vec![("database", database)];
    if let Some(redis) = redis {
        let mut redis = redis.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut redis);
        let up = matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(_)));
        dependency("redis", up);
        results.push(("redis", up));
    }
    results
}

/// Background samplers: dependencies every 10 s, the pool every second, business gauges every
/// `business_every` (one indexed aggregate query, never per scrape).
pub fn spawn_samplers(
    store: Store,
    redis: Option<ConnectionManager>,
    low_stock_below: i64,
    business_every: Duration,
) -> Vec<JoinHandle<()>> {
    let probe_store = store.clone();
    let dependencies = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(10));
        loop {
            ticker.tick().await;
            probe(&probe_store, redis.as_ref(), Duration::from_secs(2)).await;
        }
    });
    let pool_store = store.clone();
    let pool = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        loop {
            ticker.tick().await;
            let stats = pool_store.pool_stats();
            gauge!(POOL_CONNECTIONS, "state" => "idle").set(stats.idle as f64);
            gauge!(POOL_CONNECTIONS, "state" => "in_use").set(stats.in_use as f64);
            gauge!(POOL_MAX).set(stats.max as f64);
            let started = Instant::now();
            if pool_store.acquire_probe().await.is_ok() {
                histogram!(POOL_ACQUIRE).record(started.elapsed().as_secs_f64());
            }
        }
    });
    let business = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(business_every);
        loop {
            ticker.tick().await;
            jobs::sample_queue(&store).await;
            match store.stock_summary(low_stock_below).await {
                Ok(summary) => {
                    gauge!(PRODUCTS).set(summary.products as f64);
                    gauge!(STOCK_UNITS).set(summary.units as f64);
                    gauge!(OUT_OF_STOCK).set(summary.out_of_stock as f64);
                    gauge!(LOW_STOCK).set(summary.low_stock as f64);
                }
                Err(error) => tracing::warn!(%error, "cannot refresh the business metrics"),
            }
        }
    });
    vec![dependencies, pool, business]
}
