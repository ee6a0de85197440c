//! Health and metrics: what load balancers and Prometheus call.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::http::error::Problem;
use crate::observability;
use crate::state::AppState;

/// 200 while the process serves.
#[utoipa::path(get, path = "/health/live", tag = "operations",
    responses((status = 200, description = "Serving", body = crate::http::openapi::Live)))]
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when every configured dependency answers within a second, else 503 naming the one that
/// failed (a problem body with a `checks` member).
#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses((status = 200, description = "Every dependency answers", body = crate::http::openapi::Ready)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let results = observability::probe(&state.store, state.redis.as_ref(), Duration::from_secs(1)).await;
    let checks: Map<String, Value> = results
        .iter()
        .map(|(name, up)| (name.to_string(), Value::from(if *up { "up" } else { "down" })))
        .collect();
    if results.iter().all(|(_, up)| *up) {
        return Json(json!({"status": "ready", "checks": checks})).into_response();
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, up)| !up)
        .map(|(name, _)| *name)
        .collect();
    let problem = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "/problems/unavailable",
        "A dependency is unavailable; try again shortly",
    )
    .detail(format!("not answering: {}", failed.join(", ")));
    let mut body = serde_json::to_value(&problem).unwrap_or_default();
    if let Some(object) = body.as_object_mut() {
        object.insert("checks".into(), Value::Object(checks));
    }
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::http::error::PROBLEM_JSON),
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// Prometheus text format.
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
