//! Health, readiness and metrics, as load balancers and Prometheus see them.

use std::collections::BTreeSet;

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

    async fn metrics_export_every_name_the_alerts_and_dashboard_use(app) {
        // Some traffic: a product, a stock adjustment, a failed and a good login, a 404.
        let product = app.create_product(product_body(1)).await;
        app.send_json(Method::POST, &format!("/api/v1/products/{}/stock-adjustments", product["id"]), &json!({"delta": -1, "reason": "sale"})).await;
        app.anonymous(Method::POST, "/api/v1/auth/login").json(&json!({"email": "x@example.com", "password": "nope-nope"})).send().await.unwrap();
        app.get("/api/v1/products/424242").await;
        app.get("/no/such/path").await;
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        let response = app.anonymous(Method::GET, "/metrics").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = response.text().await.unwrap();
        let exported = exported_names(&text);
        for name in names_used_by_deploy() {
            assert!(exported.contains(&name), "{name} is used by deploy/ but not exported; exported: {exported:?}");
        }
        // Routes are templates, never raw paths; unknown paths collapse into one label.
        assert!(text.contains(r#"route="/api/v1/products/{id}""#), "{text}");
        assert!(!text.contains("424242"));
        assert!(!text.contains("/no/such/path") && text.contains(r#"route="unmatched""#));
        assert!(text.contains(r#"tienda_login_attempts_total{outcome="failure"}"#));
        assert!(text.contains("tienda_http_request_duration_seconds_bucket"));
        assert!(text.contains(r#"le="0.5""#), "the p99 alert's bound is a bucket edge");
    }
}

#[tokio::test]
async fn metrics_can_move_to_a_separate_listener() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("TIENDA_METRICS_ADDR", "127.0.0.1:0")])
        .await
        .unwrap();
    let response = app.anonymous(Method::GET, "/metrics").send().await.unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "/problems/not-found").await;
}

#[tokio::test]
async fn ready_is_503_naming_redis_when_redis_stops() {
    if std::env::var("TIENDA_TEST_REDIS_URL").is_err() {
        return; // the Redis test in auth.rs says so loudly
    }
    // A Redis of our own, on a free port, that we can stop.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server is on PATH when TIENDA_TEST_REDIS_URL is set");
    let url = format!("redis://127.0.0.1:{port}");
    let mut app = None;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .is_ok()
        {
            app = TestApp::spawn_with(Backend::Sqlite, &[("REDIS_URL", url.as_str())]).await;
            break;
        }
    }
    let app = app.expect("redis-server started");
    let ready: Value = app.anonymous_json("/health/ready").await;
    assert_eq!(ready["checks"], json!({"database": "up", "redis": "up"}));
    redis.kill().unwrap();
    redis.wait().unwrap();
    let response = app.anonymous(Method::GET, "/health/ready").send().await.unwrap();
    assert!(response.headers().get("retry-after").is_some());
    let body = assert_problem(response, StatusCode::SERVICE_UNAVAILABLE, "/problems/unavailable").await;
    assert_eq!(body["checks"], json!({"database": "up", "redis": "down"}));
    assert!(body["detail"].as_str().unwrap().contains("redis"));
}
