//! The one place that knows axum: the router, its layers, extractors and error rendering.

pub mod admin;
mod cached;
mod caller;
mod connection;
pub(crate) mod dto;
mod envelope;
pub mod error;
mod extract;
mod failure_log;
pub(crate) mod field_errors;
mod hit_lane;
mod idempotency;
pub(crate) mod json_body;
pub(crate) mod json_object;
mod list_query;
pub mod openapi;
mod pagination;
mod problem;
pub mod request_context;
pub(crate) mod routes;
pub mod server;

use std::convert::Infallible;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Router, middleware};
use tower::{Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::timeout::TimeoutLayer;

use crate::state::AppState;
use error::ApiError;
use routes::health;

/// Everything the server answers: the routes, then the layers every request passes through once
/// (outermost first): the envelope (request id, span, metrics, log, problem bodies), the log of
/// failures (inside the request's span), panic recovery, compression, the body limit and the request timeout.
pub fn app(
    state: AppState,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + Sync + 'static
{
    let limits = state.config.http.clone();
    // Compress what is worth it: JSON bodies over 1 KiB (smaller ones gain less than the
    // framing costs), never problem bodies' tiny payloads or already-compressed media.
    let compression = CompressionLayer::new().compress_when(
        SizeAbove::new(hit_lane::COMPRESS_ABOVE)
            .and(NotForContentType::IMAGES)
            .and(NotForContentType::GRPC),
    );
    ServiceBuilder::new()
        .layer(envelope::EnvelopeLayer::new(hit_lane::HitLane::new(&state)))
        .layer(middleware::from_fn(failure_log::log_failures))
        .layer(CatchPanicLayer::custom(envelope::panic_response))
        .layer(compression)
        .layer(DefaultBodyLimit::max(limits.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .service(router(state))
}

/// The route table's operations with their layers, then the operational routes.
fn router(state: AppState) -> Router {
    let keyed = |routes: utoipa_axum::router::OpenApiRouter<AppState>| {
        routes.route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::middleware,
        ))
    };
    let (api, _) = routes::table(keyed).split_for_parts();

    let mut operational = Router::new()
        .route("/openapi.json", get(health::openapi_json))
        .merge(
            utoipa_swagger_ui::SwaggerUi::new("/docs")
                .config(utoipa_swagger_ui::Config::from("/openapi.json").persist_authorization(true)),
        );
    if metrics_on_api_port(&state.config) {
        operational = operational.route("/metrics", get(health::metrics));
    }

    // The staff console: HTML pages beside the API, not in its route table or document.
    api.merge(operational)
        .merge(admin::router())
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
