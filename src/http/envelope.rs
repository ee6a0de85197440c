//! What every request passes through exactly once, around routing and the tower layers: its
//! request id (echoed in `X-Request-Id`), its span, the in-flight gauge, the request metrics, the
//! one request log line, and the problem+json shape for every error answer, including the ones
//! the framework and the tower layers produce on their own (405 with `Allow`, 408, 413, panics).
//!
//! It wraps the whole service once rather than each route (as `Router::layer` would), so a
//! request pays for it once: no per-route clone of a boxed layer stack.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use tower::{Layer, Service};
use tracing::Instrument;

use super::error::{PROBLEM_JSON, Problem};
use super::hit_lane::{self, HitLane};
use super::request_context::{self, RequestContext, Route, X_REQUEST_ID};
use crate::metrics;

/// The envelope, with the instance's hit lane when it has one.
#[derive(Clone, Default)]
pub struct EnvelopeLayer {
    lane: Option<Arc<HitLane>>,
}

impl EnvelopeLayer {
    pub fn new(lane: Option<HitLane>) -> Self {
        EnvelopeLayer {
            lane: lane.map(Arc::new),
        }
    }
}

impl<S> Layer<S> for EnvelopeLayer {
    type Service = Envelope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Envelope {
            inner,
            lane: self.lane.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Envelope<S> {
    inner: S,
    lane: Option<Arc<HitLane>>,
}

impl<S, B> Service<Request> for Envelope<S>
where
    S: Service<Request, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The service that was polled ready is the one that serves; a clone takes its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(serve(inner, self.lane.clone(), request))
    }
}

async fn serve<S, B>(
    mut inner: S,
    lane: Option<Arc<HitLane>>,
    mut request: Request,
) -> Result<Response, Infallible>
where
    S: Service<Request, Response = Response<B>, Error = Infallible>,
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let started = Instant::now();
    let client_id = request.headers().get(&X_REQUEST_ID).and_then(|v| v.to_str().ok());
    let method = request.method().clone();
    let context = RequestContext::for_request(client_id, method.clone());
    // A sane id is plain ASCII, so this never fails; without it the header is simply not sent.
    let id_header = HeaderValue::from_str(&context.id).ok();
    if let Some(value) = &id_header {
        request.headers_mut().insert(X_REQUEST_ID.clone(), value.clone());
    }
    let is_docs = is_docs_path(request.uri().path());
    let is_admin = super::admin::is_admin_path(request.uri().path());
    // The request's fields live in its context, which the JSON log line reads; a span carries
    // them only where something reads spans (see `logs::request_spans`).
    let span = if crate::logs::request_spans() {
        let span = tracing::info_span!(
            "request",
            request_id = %context.id,
            method = %method,
            route = tracing::field::Empty,
            user_id = tracing::field::Empty,
        );
        crate::logs::continue_trace(&span, request.headers());
        span
    } else {
        tracing::Span::none()
    };

    let in_flight = InFlight::start();
    let response = context
        .scope(async move {
            let mut response = match lane {
                Some(lane) => match lane
                    .answer(request.method(), request.uri(), request.headers())
                    .await
                {
                    Some(response) => {
                        request_context::set_route(Route::Known(hit_lane::PRODUCT_ROUTE));
                        response
                    }
                    None => call(&mut inner, request).await,
                },
                None => call(&mut inner, request).await,
            };
            drop(in_flight);
            if let Some(value) = id_header {
                response.headers_mut().insert(X_REQUEST_ID.clone(), value);
            }
            set_security_headers(response.headers_mut(), is_docs);
            if is_admin {
                set_admin_headers(response.headers_mut());
            }
            let status = response.status().as_u16();
            let elapsed = started.elapsed();
            let route = request_context::current_route();
            let route = route.as_ref().map_or("unmatched", Route::as_str);
            metrics::record_http(method.as_str(), route, status, elapsed);
            // Inside the request's context (and span, when there is one): the line names them.
            let latency_ms = elapsed.as_secs_f64() * 1000.0;
            tracing::info!(status, latency_ms, "request served");
            response
        })
        .instrument(span)
        .await;
    Ok(response)
}

/// The routed answer, inside the request's context: a problem body carries the request id.
async fn call<S, B>(inner: &mut S, request: Request) -> Response
where
    S: Service<Request, Response = Response<B>, Error = Infallible>,
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let Ok(response) = inner.call(request).await;
    as_problem(response.map(Body::new))
}

/// The browser-facing defences every answer carries: no MIME sniffing (a JSON body is never
/// run as a script or page) and no framing (no click-jacking of /docs).
pub fn set_security_headers(headers: &mut HeaderMap, is_docs: bool) {
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    if is_docs {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        );
    }
}

/// Swagger UI loads its scripts, styles and the spec from us and has no inline script, so
/// `'self'` is enough; its icons are `data:` images. Nothing may frame it, post a form elsewhere
/// or plug in objects.
const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; \
    style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; object-src 'none'; \
    base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// The staff console (`/admin`): scripts and styles from its own static files only (no
/// inline script or style, no `eval`), nothing from elsewhere, forms posted only to itself, never
/// framed; no referrer leaves it.
const ADMIN_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn set_admin_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(ADMIN_CSP),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

fn is_docs_path(path: &str) -> bool {
    path == "/docs" || path.starts_with("/docs/")
}

/// Counts a request in flight until it is answered or abandoned (the client went away and the
/// future was dropped): the gauge never drifts.
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::http_in_flight(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::http_in_flight(-1.0);
    }
}

/// An error answer that is not problem+json already gets the problem body its status stands for;
/// its other headers (`Allow`, `Retry-After`) are kept.
fn as_problem(response: Response) -> Response {
    let status = response.status();
    // The console's error pages are HTML for people, already.
    if !(status.is_client_error() || status.is_server_error()) || is_problem(&response) || is_html(&response)
    {
        return response;
    }
    let (mut parts, _body) = response.into_parts();
    let (replacement, body) = Problem::for_status(status).into_response().into_parts();
    parts.status = replacement.status;
    for name in [header::CONTENT_LENGTH, header::CONTENT_ENCODING] {
        parts.headers.remove(name);
    }
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    Response::from_parts(parts, body)
}

fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
}

fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()))
}

/// Turns a panic in a handler into an opaque 500; the panic itself is logged by the hook.
pub fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
}

/// Applied to every matched route: tells the request context which route template was chosen.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordRouteLayer;

impl<S> Layer<S> for RecordRouteLayer {
    type Service = RecordRoute<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RecordRoute { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RecordRoute<S> {
    inner: S,
}

impl<S, B> Service<axum::http::Request<B>> for RecordRoute<S>
where
    S: Service<axum::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        if let Some(route) = request.extensions().get::<MatchedPath>() {
            request_context::set_route(Route::Matched(route.clone()));
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tower::ServiceExt;

    /// A panic cannot be provoked from outside (that is the point), so the envelope is checked
    /// here: the opaque 500 it becomes carries the headers like every answer.
    #[tokio::test]
    async fn a_panic_is_an_opaque_500_with_the_security_headers() {
        let router = axum::Router::new().route(
            "/boom",
            axum::routing::get(|| async {
                if true {
                    panic!("boom");
                }
            }),
        );
        let service = tower::ServiceBuilder::new()
            .layer(EnvelopeLayer::default())
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
            .service(router);
        let request = Request::get("/boom").body(Body::empty()).unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        assert!(response.headers().get(header::CONTENT_SECURITY_POLICY).is_none());
    }
}
