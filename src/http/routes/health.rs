//! Health and metrics: what load balancers and Prometheus call.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::http::error::ApiError;
use crate::observability;
use crate::state::AppState;

/// 200 while the process serves.
#[utoipa::path(get, path = "/health/live", tag = "operations",
    responses((status = 200, description = "Serving", body = crate::http::openapi::Live)))]
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Whether every dependency answers.
///
/// 200 when every configured dependency answers within a second, else 503 naming the one that
/// failed (a problem body with a checks member).
#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses((status = 200, description = "Every dependency answers", body = crate::http::openapi::Ready)))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let results = observability::probe(&state.store, state.redis.as_ref(), Duration::from_secs(1)).await;
    let checks: Map<String, Value> = results
        .iter()
        .map(|(name, up)| (name.to_string(), Value::from(if *up { "up" } else { "down" })))
        .collect();
    if results.iter().all(|(_, up)| *up) {
        Ok(Json(json!({"status": "ready", "checks": checks})))
    } else {
        Err(ApiError::NotReady(checks))
    }
}

/// Prometheus text format.
///
/// The process's metrics in the Prometheus text exposition format. In production it is
/// served on the API's port only with `TIENDA_METRICS_PUBLIC=true` (else on `TIENDA_METRICS_ADDR`).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain")))]
pub async fn metrics() -> Response {
    match observability::install() {
        Some(handle) => {
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
