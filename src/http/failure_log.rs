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

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::*;
    use crate::http::error::ApiError;

    #[test]
    fn a_failure_carries_its_cause_out_and_the_log_takes_it_once() {
        let mut response = ApiError::Internal(anyhow::anyhow!("disk on fire")).into_response();
        assert!(
            matches!(response.extensions().get::<Cause>(), Some(Cause::Internal(c)) if c.contains("disk on fire"))
        );
        log_cause(&mut response);
        assert!(response.extensions().get::<Cause>().is_none());
        // A client's mistake has no cause to log.
        assert!(
            ApiError::NotFound
                .into_response()
                .extensions()
                .get::<Cause>()
                .is_none()
        );
    }
}
