//! Prometheus metrics: the recorder, every metric's name and help, and the samplers that keep
//! the gauges fresh without scanning the catalogue on every scrape.

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

pub const HTTP_REQUESTS: &str = "tienda_http_requests_total";
pub const HTTP_DURATION: &str = "tienda_http_request_duration_seconds";
pub const HTTP_IN_FLIGHT: &str = "tienda_http_requests_in_flight";
pub const POOL_CONNECTIONS: &str = "tienda_db_pool_connections";
pub const POOL_MAX: &str = "tienda_db_pool_max_connections";
pub const POOL_ACQUIRE: &str = "tienda_db_pool_acquire_duration_seconds";
pub const LOGIN_ATTEMPTS: &str = "tienda_login_attempts_total";
pub const PRODUCTS: &str = "tienda_products";
pub const STOCK_UNITS: &str = "tienda_stock_units";
pub const OUT_OF_STOCK: &str = "tienda_products_out_of_stock";
pub const LOW_STOCK: &str = "tienda_products_low_stock";
pub const ADJUSTMENTS: &str = "tienda_stock_adjustments_total";
pub const ADJUSTMENT_UNITS: &str = "tienda_stock_adjustment_units_total";
pub const DEPENDENCY_UP: &str = "tienda_dependency_up";
pub const BUILD_INFO: &str = "tienda_build_info";

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
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests served, by method, route template and status class."
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
    describe_gauge!(BUILD_INFO, "Always 1; the version label says which build runs.");
}

const METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "other",
];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

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

/// One route's request counter and latency histogram for each method and status class, looked
/// up in the recorder once and then reused: recording a request allocates nothing.
struct RouteMetrics([OnceLock<(metrics::Counter, metrics::Histogram)>; METHODS.len() * STATUS_CLASSES.len()]);

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
            .or_insert_with(|| Arc::new(RouteMetrics(std::array::from_fn(|_| OnceLock::new()))))
            .clone()
    })
}

pub fn record_http(method: &str, route: &str, status: u16, elapsed: Duration) {
    let (method, class) = (method_index(method), status_class_index(status));
    let metrics = route_metrics(route);
    let (requests, duration) = metrics.0[method * STATUS_CLASSES.len() + class].get_or_init(|| {
        let labels = [
            Label::new("method", SharedString::const_str(METHODS[method])),
            Label::new("route", route.to_owned()),
            Label::new("status_class", SharedString::const_str(STATUS_CLASSES[class])),
        ];
        (
            counter!(HTTP_REQUESTS, labels.iter()),
            histogram!(HTTP_DURATION, labels.iter()),
        )
    });
    requests.increment(1);
    duration.record(elapsed.as_secs_f64());
}

/// The in-flight gauge's handle, looked up once rather than on every request.
pub fn http_in_flight(delta: f64) {
    static IN_FLIGHT: OnceLock<metrics::Gauge> = OnceLock::new();
    IN_FLIGHT.get_or_init(|| gauge!(HTTP_IN_FLIGHT)).increment(delta);
}

pub fn login(outcome: &'static str) {
    counter!(LOGIN_ATTEMPTS, "outcome" => outcome).increment(1);
}

pub fn stock_adjusted(delta: i64) {
    let direction = if delta > 0 { "in" } else { "out" };
    counter!(ADJUSTMENTS, "direction" => direction).increment(1);
    counter!(ADJUSTMENT_UNITS, "direction" => direction).increment(delta.unsigned_abs());
}

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
    gauge!(HTTP_IN_FLIGHT).increment(0.0);
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
