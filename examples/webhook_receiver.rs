//! A webhook receiver for `bench/webhooks.py`: accepts every POST with 204, and keeps, per
//! event, how long after the event's `created_at` it arrived.
//!
//! ```sh
//! RECEIVER_ADDR=127.0.0.1:8099 cargo run --release --example webhook_receiver
//! ```
//!
//! `GET /stats` answers `{"requests", "unique", "p50_ms", "p99_ms", "max_ms", "first", "last"}`
//! (`first`/`last`: arrival times in Unix seconds); `POST /reset` forgets everything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Default)]
struct Seen {
    requests: u64,
    ids: HashSet<String>,
    lags_ms: Vec<f64>,
    first: Option<f64>,
    last: Option<f64>,
}

fn now() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

#[tokio::main]
async fn main() {
    let addr = std::env::var("RECEIVER_ADDR").unwrap_or_else(|_| "127.0.0.1:8099".to_owned());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (on_post, on_stats, on_reset) = (seen.clone(), seen.clone(), seen);
    let app = axum::Router::new()
        .route(
            "/hook",
            post(move |body: String| {
                let seen = on_post.clone();
                async move {
                    let at = now();
                    let event: Value = serde_json::from_str(&body).unwrap_or_default();
                    let created = event["created_at"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.timestamp_micros() as f64 / 1e6);
                    let mut seen = seen.lock().unwrap();
                    seen.requests += 1;
                    if let Some(id) = event["id"].as_str()
                        && seen.ids.insert(id.to_owned())
                        && let Some(created) = created
                    {
                        seen.lags_ms.push((at - created) * 1000.0);
                    }
                    seen.first.get_or_insert(at);
                    seen.last = Some(at);
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .route(
            "/stats",
            get(move || {
                let seen = on_stats.clone();
                async move {
                    let seen = seen.lock().unwrap();
                    let mut lags = seen.lags_ms.clone();
                    lags.sort_by(f64::total_cmp);
                    let at = |q: f64| {
                        lags.get(((lags.len() as f64 - 1.0) * q).round() as usize)
                            .copied()
                    };
                    Json(json!({
                        "requests": seen.requests, "unique": seen.ids.len(),
                        "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": lags.last(),
                        "first": seen.first, "last": seen.last,
                    }))
                }
            }),
        )
        .route(
            "/reset",
            post(move || {
                let seen = on_reset.clone();
                async move {
                    *seen.lock().unwrap() = Seen::default();
                    StatusCode::NO_CONTENT
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    println!("receiving on {addr}");
    axum::serve(listener, app).await.unwrap();
}
