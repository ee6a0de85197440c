//! `X-Content-Type-Options` and `X-Frame-Options` on every kind of answer, and the CSP of /docs.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

const SECURITY_HEADERS: [(&str, &str); 2] =
    [("x-content-type-options", "nosniff"), ("x-frame-options", "DENY")];

pub(super) fn assert_security_headers(response: &reqwest::Response, what: &str) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(
            response.headers().get(name).map(|v| v.to_str().unwrap()),
            Some(value),
            "{name} on {what}"
        );
    }
}

both_backends! {
    async fn every_kind_of_answer_carries_the_security_headers(app) {
        let id = app.create_product(json!({"name": "Tee", "price": "1.00", "stock": 5})).await["id"].as_i64().unwrap();
        let samples = vec![
            ("200 api", app.get("/api/v1/products").await),
            ("304", app.request(Method::GET, &format!("/api/v1/products/{id}")).header("if-none-match", "\"v1\"").send().await.unwrap()),
            ("404 fallback", app.get("/nope").await),
            ("405", app.request(Method::DELETE, "/api/v1/products").send().await.unwrap()),
            ("401", app.anonymous(Method::POST, "/api/v1/products").json(&product_body(1)).send().await.unwrap()),
            ("422", app.send_json(Method::POST, "/api/v1/products", &json!({})).await),
            // On a connection of its own: the server closes it without reading the whole body.
            ("413", crate::helpers::client_builder().no_proxy().pool_max_idle_per_host(0).build().unwrap()
                .post(app.url("/api/v1/products")).bearer_auth(&app.admin_token)
                .header("content-type", "application/json").body(" ".repeat((1 << 20) + 100)).send().await.unwrap()),
            ("health", app.get("/health/live").await),
            ("openapi", app.get("/openapi.json").await),
            ("metrics", app.get("/metrics").await),
            ("docs redirect", app.client.get(app.url("/docs")).send().await.unwrap()),
            ("docs asset", app.get("/docs/swagger-ui.css").await),
        ];
        for (what, response) in &samples {
            assert_security_headers(response, what);
            assert_eq!(response.headers().get("content-security-policy").is_some(), what.starts_with("docs"), "{what}");
        }
        let docs = app.anonymous(Method::GET, "/docs/").send().await.unwrap();
        assert_security_headers(&docs, "docs");
        let csp = docs.headers()["content-security-policy"].to_str().unwrap().to_owned();
        for source in csp.split(';').flat_map(|directive| directive.split_whitespace().skip(1)) {
            assert!(
                ["'self'", "'none'", "data:"].contains(&source) || source.starts_with("'sha256-"),
                "{source} in {csp}"
            );
        }
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    }
}

/// The 408 of a request whose body never arrives carries them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_request_carries_the_security_headers() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("TIENDA_REQUEST_TIMEOUT_SECS", "1")])
        .await
        .unwrap();
    let request = format!(
        "POST /api/v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\": \"sl",
        app.admin_token
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_lowercase();
    assert!(answer.starts_with("http/1.1 408"), "{answer}");
    assert!(
        answer.contains("x-content-type-options: nosniff") && answer.contains("x-frame-options: deny"),
        "{answer}"
    );
}

/// `/metrics` on its own listener (`TIENDA_METRICS_ADDR`) carries them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_separate_metrics_listener_carries_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("tienda.db").display());
    let vars = [
        ("DATABASE_URL", database_url.as_str()),
        ("TIENDA_ADDR", "127.0.0.1:0"),
        ("TIENDA_METRICS_ADDR", "127.0.0.1:0"),
        ("TIENDA_LOG_FORMAT", "json"),
    ];
    let config = tienda::config::Config::from_lookup(|key| {
        vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string())
    })
    .unwrap();
    let app = tienda::startup::Application::build(config).await.unwrap();
    let metrics = app.metrics_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let client = crate::helpers::client_builder().no_proxy().build().unwrap();
    for path in ["/metrics", "/nope"] {
        let response = client
            .get(format!("http://{metrics}{path}"))
            .send()
            .await
            .unwrap();
        assert_security_headers(&response, path);
    }
    let _ = stop.send(());
}
