//! Health, readiness and metrics, as load balancers and Prometheus see them.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// Every `tienda_*` metric name used by the alert rules and the dashboard, with histogram
/// suffixes folded into their metric.
fn names_used_by_deploy() -> BTreeSet<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut names = BTreeSet::new();
    for file in [
        "deploy/prometheus/alerts.yml",
        "deploy/grafana/dashboards/tienda.json",
    ] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("tienda_") {
            let tail = &rest[start..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
            names.insert(base.to_owned());
            rest = &tail[end..];
        }
    }
    names
}

fn exported_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| line.starts_with("# TYPE "))
        .filter_map(|line| line.split_whitespace().nth(2).map(str::to_owned))
        .collect()
}

both_backends! {
    async fn live_and_ready_answer_200_with_the_database_up(app) {
        let response = app.anonymous(Method::GET, "/health/live").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"status": "ok"}));
        let response = app.anonymous(Method::GET, "/health/ready").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"status": "ready", "checks": {"database": "up"}}));
    }

    async fn metrics_export_every_deploy_name_and_count_exactly_the_requests_served(app) {
        // The recorder is process-wide, and every test of this binary serves from this process:
        // to count only this test's requests, a `tienda` process of its own serves them, on
        // this variant's database.
        let database_url = app.database_url.clone();
        // The cache on (as `auto` makes it on SQLite): its series are among deploy/'s names.
        let settings = [("DATABASE_URL", database_url.as_str()), ("TIENDA_BUSINESS_METRICS_SECS", "1"), ("TIENDA_CACHE", "local")];
        let (mut server, addr) = tokio::task::block_in_place(|| crate::process::serve(&std::env::temp_dir(), &settings));
        let base = format!("http://{addr}");
        let client = crate::helpers::client_builder().no_proxy().build().unwrap();
        // The samplers' first values (pool, business gauges) appear soon after start.
        let before = scrape_until(&client, &base, |m| m.contains_key("tienda_db_pool_acquire_duration_seconds_count")).await;

        let (email, password) = crate::process::ADMIN;
        let login = |password: &'static str| client.post(format!("{base}/api/v1/auth/login")).json(&json!({"email": email, "password": password})).send();
        let token = login(password).await.unwrap().json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
        for _ in 0..3 {
            assert_eq!(login("wrong-password").await.unwrap().status(), StatusCode::UNAUTHORIZED);
        }
        let response = client.post(format!("{base}/api/v1/products")).bearer_auth(&token).json(&product_body(1)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let id = response.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        for delta in [-1, 3, -4] {
            let response = client.post(format!("{base}/api/v1/products/{id}/stock-adjustments")).bearer_auth(&token)
                .json(&json!({"delta": delta, "reason": "counted"})).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
        }
        assert_eq!(client.get(format!("{base}/api/v1/products/424242")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
        for _ in 0..2 {
            assert_eq!(client.get(format!("{base}/no/such/path")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
        }
        // 12 units created, then -1, +3, -4: the business gauges catch up within a few ticks.
        let after = scrape_until(&client, &base, |m| m.get("tienda_stock_units") == Some(&10.0)).await;

        let delta = |series: &str| after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0);
        for (series, expected) in [
            (r#"tienda_login_attempts_total{outcome="success"}"#, 1.0),
            (r#"tienda_login_attempts_total{outcome="failure"}"#, 3.0),
            (r#"tienda_http_requests_total{method="POST",route="/api/v1/auth/login",status_class="2xx",status="200"}"#, 1.0),
            (r#"tienda_http_requests_total{method="POST",route="/api/v1/auth/login",status_class="4xx",status="401"}"#, 3.0),
            (r#"tienda_http_requests_total{method="POST",route="/api/v1/products",status_class="2xx",status="201"}"#, 1.0),
            (r#"tienda_http_requests_total{method="POST",route="/api/v1/products/{id}/stock-adjustments",status_class="2xx",status="201"}"#, 3.0),
            (r#"tienda_http_requests_total{method="GET",route="/api/v1/products/{id}",status_class="4xx",status="404"}"#, 1.0),
            (r#"tienda_http_requests_total{method="GET",route="unmatched",status_class="4xx",status="404"}"#, 2.0),
            (r#"tienda_http_request_duration_seconds_count{method="POST",route="/api/v1/auth/login",status_class="4xx"}"#, 3.0),
            (r#"tienda_stock_adjustments_total{direction="out"}"#, 2.0),
            (r#"tienda_stock_adjustments_total{direction="in"}"#, 1.0),
            (r#"tienda_stock_adjustment_units_total{direction="out"}"#, 5.0),
            (r#"tienda_stock_adjustment_units_total{direction="in"}"#, 3.0),
        ] {
            assert_eq!(delta(series), expected, "{series}");
        }
        assert_eq!(after.get("tienda_products"), Some(&1.0));
        // The standard process family.
        for family in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds"] {
            assert!(after.get(family).is_some_and(|v| *v >= 0.0), "{family} missing");
        }
        assert!(after["process_resident_memory_bytes"] > 1_000_000.0);
        assert!(after["process_open_fds"] >= 3.0);
        let started = after["process_start_time_seconds"];
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(started > now - 3600.0 && started <= now + 1.0, "{started}");
        assert_eq!(after.get(r#"tienda_dependency_up{dependency="database"}"#), Some(&1.0));

        let response = client.get(format!("{base}/metrics")).send().await.unwrap();
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = response.text().await.unwrap();
        let exported = exported_names(&text);
        for name in names_used_by_deploy() {
            assert!(exported.contains(&name), "{name} is used by deploy/ but not exported; exported: {exported:?}");
        }
        // Routes are templates, never raw paths; unknown paths collapse into one label.
        assert!(!text.contains("424242") && !text.contains("/no/such/path"), "{text}");
        assert!(text.contains(r#"le="0.5""#), "the p99 alert's bound is a bucket edge");
        crate::process::signal(&server, "TERM");
        let stopped = tokio::task::block_in_place(|| crate::process::wait_with_timeout(&mut server, std::time::Duration::from_secs(10)));
        assert!(stopped.success());
    }
}

/// Every sample of a Prometheus text exposition, keyed by name and labels as rendered.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter_map(|(series, value)| Some((series.to_owned(), value.parse().ok()?)))
        .collect()
}

/// Scrapes `/metrics` until `ready` holds of its samples (at most 15 s), and returns them.
async fn scrape_until(
    client: &reqwest::Client,
    base: &str,
    ready: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let response = client.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let samples = samples(&response.text().await.unwrap());
        if ready(&samples) {
            return samples;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the metrics never got there: {samples:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_can_move_to_a_separate_listener() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("TIENDA_METRICS_ADDR", "127.0.0.1:0")])
        .await
        .unwrap();
    assert_eq!(app.get("/api/v1/products").await.status(), StatusCode::OK);
    let response = app.anonymous(Method::GET, "/metrics").send().await.unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "/problems/not-found").await;
    // The separate listener serves the exposition, and only that.
    let metrics = app.metrics_address.clone().expect("a metrics listener");
    let response = app.client.get(format!("{metrics}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(
            r#"tienda_http_requests_total{method="GET",route="/api/v1/products",status_class="2xx",status="200"}"#
        ),
        "{text}"
    );
    let response = app
        .client
        .get(format!("{metrics}/api/v1/products"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
#[cfg_attr(
    not(tienda_test_redis),
    ignore = "set TIENDA_TEST_REDIS_URL to run the Redis tests"
)]
async fn ready_is_degraded_naming_redis_when_redis_stops() {
    required_env(REDIS_ENV);
    // A Redis of our own, on a free port, that we can stop (not the configured one).
    let mut redis = crate::cache_redis::OwnRedis::start();
    let url = redis.url();
    let app = TestApp::spawn_with(Backend::Sqlite, &[("REDIS_URL", url.as_str())]).await;
    let app = app.expect("redis-server started");
    let ready: Value = app.anonymous_json("/health/ready").await;
    assert_eq!(ready["checks"], json!({"database": "up", "redis": "up"}));
    redis.kill();
    // Redis down degrades the service (each instance falls back to its own throttle) but
    // stops nothing: still ready, the check marked down.
    let response = app.anonymous(Method::GET, "/health/ready").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "degraded", "checks": {"database": "up", "redis": "down"}})
    );
}
