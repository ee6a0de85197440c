//! The log of failed requests: each failure's cause once, inside the request's span, as
//! axum's error-handling example does, rather than wherever an error becomes a response.

use axum::response::Response;

/// What the log says about a failed request. The response carries it out to the middleware
/// that logs it once, inside the request's span; the client gets nothing of it.
#[derive(Debug, Clone)]
pub(crate) enum Cause {
    Internal(String),
    Unavailable(String),
}

/// Logs the cause a response carries, if any, and drops it.
fn log_cause(response: &mut Response) {
    match response.extensions_mut().remove::<Cause>() {
        Some(Cause::Internal(error)) => tracing::error!(error, "request failed"),
        Some(Cause::Unavailable(error)) => tracing::warn!(error, "dependency unavailable"),
        None => {}
    }
}

/// The middleware that logs every failure once; see [`Cause`].
pub(crate) async fn log_failures(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    log_cause(&mut response);
    response
}
