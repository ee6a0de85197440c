//! Health and metrics: what load balancers and Prometheus call.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::http::error::ApiError;
use crate::metrics;
use crate::state::AppState;

/// 200 while the process serves.
#[utoipa::path(get, path = "/health/live", tag = "operations",
    responses((status = 200, description = "Serving", body = crate::http::openapi::Live)))]
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Whether the instance can serve.
///
/// 200 when the database answers within a second (status degraded when Redis does not, or the
/// cache's invalidation channel is down: requests still succeed without them), else 503 naming what failed (a problem body with a checks member).
/// 503 too while the instance drains before shutting down.
#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses((status = 200, description = "The database answers", body = crate::http::openapi::Ready)))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if state.draining.load(Ordering::SeqCst) {
        return Err(ApiError::NotReady {
            detail: "shutting down".into(),
            checks: None,
        });
    }
    let mut results = metrics::probe(&state.store, state.redis.as_ref(), Duration::from_secs(1)).await;
    if let Some(down) = state.cache.channel_down() {
        results.push(("cache", !down));
    }
    let checks: Map<String, Value> = results
        .iter()
        .map(|(name, up)| (name.to_string(), Value::from(if *up { "up" } else { "down" })))
        .collect();
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, up)| !up)
        .map(|(name, _)| *name)
        .collect();
    // Redis only shares the throttle and the cache's invalidations between instances; without
    // it each instance falls back to its own throttle and bypasses its cache, so it degrades the
    // service rather than stopping it.
    if failed.iter().all(|name| matches!(*name, "redis" | "cache")) {
        let status = if failed.is_empty() { "ready" } else { "degraded" };
        return Ok(Json(json!({"status": status, "checks": checks})));
    }
    Err(ApiError::NotReady {
        detail: format!("not answering: {}", failed.join(", ")),
        checks: Some(checks),
    })
}

/// Once the listener has closed at shutdown, every answer says `Connection: close`: the
/// balancer's kept-alive connections to this instance end after their next answer instead of
/// being cut under a request already sent on one.
pub async fn close_while_draining(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if state.closing.load(Ordering::SeqCst) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Prometheus text format.
///
/// The process's metrics in the Prometheus text exposition format. In production it is
/// served on the API's port only with `TIENDA_METRICS_PUBLIC=true` (else on `TIENDA_METRICS_ADDR`).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain")))]
pub async fn metrics() -> Response {
    match metrics::install() {
        Some(handle) => {
            metrics::sample_process();
            handle.run_upkeep();
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                handle.render(),
            )
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The OpenAPI 3.1 document of the whole API.
pub async fn openapi_json() -> Json<Value> {
    Json(crate::http::openapi::document().clone())
}
