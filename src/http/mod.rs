//! The one place that knows axum: the router, its layers, extractors and error rendering.

mod auth;
pub(crate) mod dto;
pub mod error;
mod extract;
mod idempotency;
mod json_body;
mod list_query;
pub mod openapi;
mod pagination;
mod problem_layer;
pub mod request_id;
pub(crate) mod routes;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, patch, post};
use axum::{Router, middleware};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::timeout::TimeoutLayer;

use crate::state::AppState;
use error::ApiError;
use routes::{auth as auth_routes, health, inventory, products, users};

/// Everything the server answers, with its layers.
pub fn router(state: AppState) -> Router {
    let limits = &state.config.http;
    // The routes whose POST creates something honour Idempotency-Key.
    let creating = Router::new()
        .route(
            "/products",
            get(products::list_products).post(products::create_product),
        )
        .route(
            "/products/{id}/stock-adjustments",
            get(inventory::list_stock_adjustments).post(inventory::adjust_stock),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::middleware,
        ));
    let api = Router::new()
        .merge(creating)
        .route(
            "/products/{id}",
            get(products::get_product)
                .put(products::replace_product)
                .patch(products::patch_product)
                .delete(products::delete_product),
        )
        .route("/auth/register", post(auth_routes::register))
        .route("/auth/login", post(auth_routes::login))
        .route("/auth/refresh", post(auth_routes::refresh))
        .route("/auth/logout", post(auth_routes::logout))
        .route("/auth/me", get(auth_routes::me))
        .route("/users", get(users::list_users))
        .route("/users/{id}", patch(users::update_user));

    // Compress what is worth it: JSON bodies over 1 KiB (smaller ones gain less than the
    // framing costs), never problem bodies' tiny payloads or already-compressed media.
    let compression = CompressionLayer::new().compress_when(
        SizeAbove::new(1024)
            .and(NotForContentType::IMAGES)
            .and(NotForContentType::GRPC),
    );

    let mut operational = Router::new()
        .route("/openapi.json", get(health::openapi_json))
        .merge(
            utoipa_swagger_ui::SwaggerUi::new("/docs")
                .config(utoipa_swagger_ui::Config::from("/openapi.json").persist_authorization(true)),
        )
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready));
    if state.config.observability.metrics_addr.is_none() {
        operational = operational.route("/metrics", get(health::metrics));
    }

    Router::new()
        .nest("/api/v1", api)
        .merge(operational)
        .fallback(|| async { ApiError::NotFound })
        .with_state(state.clone())
        .layer(middleware::from_fn(problem_layer::middleware))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(DefaultBodyLimit::max(limits.body_limit))
        .layer(compression)
        .layer(CatchPanicLayer::custom(problem_layer::panic_response))
        .layer(middleware::from_fn(request_id::middleware))
}

/// Limits of the HTTP layer, from configuration.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub body_limit: usize,
    pub request_timeout: Duration,
}

/// The separate metrics listener's router (`TIENDA_METRICS_ADDR`).
pub fn metrics_router() -> Router {
    Router::new()
        .route("/metrics", get(routes::health::metrics))
        .fallback(|| async { ApiError::NotFound })
}
