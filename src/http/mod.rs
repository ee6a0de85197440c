//! The one place that knows axum: the router, its layers, extractors and error rendering.

mod auth;
mod connection;
pub(crate) mod dto;
mod envelope;
pub mod error;
mod extract;
mod field_errors;
mod idempotency;
mod json_body;
mod json_object;
mod list_query;
pub mod openapi;
mod pagination;
pub mod request_context;
pub(crate) mod routes;
pub mod server;

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::{Router, middleware};
use tower::{Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::timeout::TimeoutLayer;

use crate::state::AppState;
use error::ApiError;
use routes::{auth as auth_routes, health, inventory, products, users};

/// Everything the server answers: the routes, then the layers every request passes through once
/// (outermost first): the envelope (request id, span, metrics, log, problem bodies), panic
/// recovery, compression, the body limit and the request timeout.
pub fn app(
    state: AppState,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + Sync + 'static
{
    let limits = state.config.http.clone();
    // Compress what is worth it: JSON bodies over 1 KiB (smaller ones gain less than the
    // framing costs), never problem bodies' tiny payloads or already-compressed media.
    let compression = CompressionLayer::new().compress_when(
        SizeAbove::new(1024)
            .and(NotForContentType::IMAGES)
            .and(NotForContentType::GRPC),
    );
    ServiceBuilder::new()
        .layer(envelope::EnvelopeLayer)
        .layer(CatchPanicLayer::custom(envelope::panic_response))
        .layer(compression)
        .layer(DefaultBodyLimit::max(limits.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .service(router(state))
}

/// The routes. Paths are written out in full rather than nested, so routing strips no prefix.
fn router(state: AppState) -> Router {
    // The routes whose POST creates something honour Idempotency-Key.
    let creating = Router::new()
        .route(
            "/api/v1/products",
            get(products::list_products).post(products::create_product),
        )
        .route(
            "/api/v1/products/{id}/stock-adjustments",
            get(inventory::list_stock_adjustments).post(inventory::adjust_stock),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::middleware,
        ));
    let api = Router::new()
        .merge(creating)
        .route(
            "/api/v1/products/{id}",
            get(products::get_product)
                .put(products::replace_product)
                .patch(products::patch_product)
                .delete(products::delete_product),
        )
        .route("/api/v1/auth/register", post(auth_routes::register))
        .route("/api/v1/auth/login", post(auth_routes::login))
        .route("/api/v1/auth/refresh", post(auth_routes::refresh))
        .route("/api/v1/auth/logout", post(auth_routes::logout))
        .route("/api/v1/auth/me", get(auth_routes::me))
        .route("/api/v1/users", get(users::list_users))
        .route("/api/v1/users/{id}", patch(users::update_user));

    let mut operational = Router::new()
        .route("/openapi.json", get(health::openapi_json))
        .merge(
            utoipa_swagger_ui::SwaggerUi::new("/docs")
                .config(utoipa_swagger_ui::Config::from("/openapi.json").persist_authorization(true)),
        )
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready));
    if metrics_on_api_port(&state.config) {
        operational = operational.route("/metrics", get(health::metrics));
    }

    api.merge(operational)
        .route_layer(envelope::RecordRouteLayer)
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            health::close_while_draining,
        ))
        .with_state(state)
}

/// Whether the API's port answers `/metrics`. It holds business figures, so in production it is
/// served only on `TIENDA_METRICS_ADDR` unless `TIENDA_METRICS_PUBLIC=true`; with neither, it is
/// not served at all (start-up warns). In development it stays on the API's port unless a
/// separate address is set.
pub fn metrics_on_api_port(config: &crate::config::Config) -> bool {
    let observability = &config.observability;
    observability.metrics_public
        || (observability.metrics_addr.is_none()
            && config.environment != crate::config::Environment::Production)
}

/// Limits of the HTTP layer, from configuration.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub body_limit: usize,
    pub request_timeout: Duration,
    /// A request head must arrive whole within this (`TIENDA_HEADER_TIMEOUT_SECS`).
    pub header_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Connections open at once (`TIENDA_MAX_CONNECTIONS`); more wait in the backlog.
    pub max_connections: usize,
    /// Relevance searches running at once (`TIENDA_SEARCH_CONCURRENCY`).
    pub search_concurrency: usize,
}

/// The separate metrics listener's router (`TIENDA_METRICS_ADDR`).
pub fn metrics_router() -> Router {
    Router::new()
        .route("/metrics", get(routes::health::metrics))
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::map_response(|mut response: Response| async move {
            envelope::set_security_headers(response.headers_mut(), false);
            response
        }))
}
