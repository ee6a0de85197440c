//! Gives every error answer the problem+json shape, including the ones the framework and the
//! tower layers produce on their own (405 with `Allow`, 408, 413, panics), keeping their headers.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{PROBLEM_JSON, Problem};

pub async fn middleware(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_problem(&response) {
        return response;
    }
    let (mut parts, _body) = response.into_parts();
    let problem = Problem::for_status(status);
    let replacement = problem.into_response();
    parts.status = replacement.status();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(PROBLEM_JSON),
    );
    let (_, body) = replacement.into_parts();
    Response::from_parts(parts, Body::new(body))
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
