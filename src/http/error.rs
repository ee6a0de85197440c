//! The one place where a failure becomes a status code and an RFC 9457 problem body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::field_errors::{DETAIL_BUDGET, clip};
pub use super::field_errors::{FieldError, FieldErrors};
use super::request_context;
use crate::auth::password::HashError;
use crate::domain::product::Invalid;
use crate::limits::Overloaded;
use crate::services::auth::AuthError;
use crate::store::{Conflict, StoreError};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Every way a request can fail. Handlers and extractors return these; only
/// [`ApiError::into_response`] picks the status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request body is invalid")]
    Validation(FieldErrors),
    #[error("query parameters are invalid")]
    InvalidQuery(FieldErrors),
    #[error("invalid request header")]
    InvalidHeader(FieldErrors),
    #[error("malformed query string")]
    MalformedQuery,
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("unsupported media type")]
    UnsupportedMediaType(&'static str),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("not found")]
    NotFound,
    /// No credentials were presented.
    #[error("authentication required")]
    Unauthenticated,
    /// A bearer token or refresh token that is malformed, expired, revoked or replayed.
    #[error("invalid token")]
    InvalidToken,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("forbidden")]
    Forbidden,
    #[error("too many requests")]
    TooManyRequests(std::time::Duration),
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("idempotency key in use")]
    IdempotencyKeyInUse,
    #[error("idempotency key reused with another request")]
    IdempotencyKeyReused,
    /// The caller holds the most live idempotency keys allowed; the oldest expires after this.
    #[error("too many idempotency keys")]
    IdempotencyKeyLimit(std::time::Duration),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Too much of an expensive kind of work (password hashing, relevance search) is running;
    /// no slot freed within the wait.
    #[error("overloaded")]
    Overloaded,
    #[error("internal error: {0}")]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict(kind) => ApiError::Conflict(kind),
            StoreError::PreconditionFailed => ApiError::PreconditionFailed,
            StoreError::InvalidCursor => ApiError::InvalidQuery(
                vec![FieldError::new(
                    "cursor",
                    Invalid::new("invalid_cursor", "is not a cursor this API issued"),
                )]
                .into(),
            ),
            StoreError::Unavailable(cause) => ApiError::Unavailable(cause.to_string()),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<Overloaded> for ApiError {
    fn from(_: Overloaded) -> Self {
        ApiError::Overloaded
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::InvalidCredentials => ApiError::InvalidCredentials,
            AuthError::Throttled(wait) => ApiError::TooManyRequests(wait),
            AuthError::InvalidToken => ApiError::InvalidToken,
            AuthError::Store(error) => error.into(),
            AuthError::Hash(HashError::Overloaded(_)) => ApiError::Overloaded,
            other => ApiError::Internal(other.into()),
        }
    }
}

/// The problem body; `type` is what clients branch on.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"type": "/problems/validation", "title": "Request body is invalid", "status": 422, "detail": "1 field is invalid", "errors": [{"field": "price", "code": "too_many_decimals", "message": "at most 2 decimal places"}], "request_id": "01938f6e5c2a7b3e8f4d2a1b0c9d8e7f"}))]
pub struct Problem {
    /// A stable relative URI per kind of problem; branch on it.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "/problems/validation")]
    pub kind: &'static str,
    #[schema(value_type = String)]
    pub title: &'static str,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    pub request_id: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &'static str, title: &'static str) -> Self {
        Problem {
            kind,
            title,
            status: status.as_u16(),
            detail: None,
            errors: Vec::new(),
            request_id: request_context::current_id(),
        }
    }

    /// The detail, cut to a fixed size: it may quote what the client sent.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(clip(detail.into(), DETAIL_BUDGET));
        self
    }

    /// Lists the invalid fields (the first [`FieldErrors::MAX_LISTED`]), with a count as the
    /// detail.
    pub fn errors(self, errors: &FieldErrors) -> Self {
        let listed = errors.listed().len();
        let detail = match errors.total() {
            1 => "1 field is invalid".to_owned(),
            n if n > listed => format!("{n} fields are invalid; the first {listed} are listed"),
            n => format!("{n} fields are invalid"),
        };
        self.detail(detail).with_errors(errors.listed().to_vec())
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// The problem a bare framework status (405 from routing, 408 from the timeout) stands for.
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Problem::new(status, "/problems/not-found", "Resource not found"),
            StatusCode::METHOD_NOT_ALLOWED => Problem::new(
                status,
                "/problems/method-not-allowed",
                "Method not allowed on this resource",
            ),
            StatusCode::REQUEST_TIMEOUT => {
                Problem::new(status, "/problems/timeout", "The request took too long")
            }
            StatusCode::PAYLOAD_TOO_LARGE => {
                Problem::new(status, "/problems/payload-too-large", "Request body is too large")
            }
            s if s.is_server_error() => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "/problems/internal",
                "Internal server error",
            ),
            s => Problem::new(s, "/problems/bad-request", "The request cannot be served"),
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

impl ApiError {
    pub(crate) fn problem(&self) -> Problem {
        use StatusCode as S;
        match self {
            ApiError::Validation(errors) => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "/problems/validation",
                "Request body is invalid",
            )
            .errors(errors),
            ApiError::InvalidQuery(errors) => Problem::new(
                S::BAD_REQUEST,
                "/problems/invalid-parameter",
                "Query parameters are invalid",
            )
            .errors(errors),
            ApiError::InvalidHeader(errors) => Problem::new(
                S::BAD_REQUEST,
                "/problems/invalid-header",
                "A request header is invalid",
            )
            .errors(errors),
            ApiError::MalformedQuery => Problem::new(
                S::BAD_REQUEST,
                "/problems/invalid-parameter",
                "Query parameters are invalid",
            )
            .detail("the query string is not valid application/x-www-form-urlencoded"),
            ApiError::MalformedJson(reason) => Problem::new(
                S::BAD_REQUEST,
                "/problems/malformed-json",
                "Request body is not valid JSON",
            )
            .detail(reason.clone()),
            ApiError::UnsupportedMediaType(expected) => Problem::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                "/problems/unsupported-media-type",
                "Unsupported content type",
            )
            .detail(format!("send the body as {expected}")),
            ApiError::PayloadTooLarge => Problem::for_status(S::PAYLOAD_TOO_LARGE),
            ApiError::NotFound => Problem::for_status(S::NOT_FOUND),
            ApiError::Unauthenticated => Problem::new(
                S::UNAUTHORIZED,
                "/problems/unauthorized",
                "Authentication required",
            )
            .detail("send Authorization: Bearer <access token>"),
            ApiError::InvalidToken => {
                Problem::new(S::UNAUTHORIZED, "/problems/invalid-token", "Invalid token")
                    .detail("the token is malformed, expired or revoked")
            }
            ApiError::InvalidCredentials => Problem::new(
                S::UNAUTHORIZED,
                "/problems/invalid-credentials",
                "Invalid email or password",
            ),
            ApiError::Forbidden => Problem::new(S::FORBIDDEN, "/problems/forbidden", "Not allowed")
                .detail("your role does not allow this operation"),
            ApiError::TooManyRequests(wait) => Problem::new(
                S::TOO_MANY_REQUESTS,
                "/problems/too-many-requests",
                "Too many requests",
            )
            .detail(format!(
                "too many attempts; retry in {} s",
                retry_after_secs(*wait)
            )),
            ApiError::Conflict(Conflict::DuplicateSku) => Problem::new(
                S::CONFLICT,
                "/problems/duplicate-sku",
                "Another product already has this sku",
            )
            .detail("sku is already used by another product (compared case-insensitively)")
            .with_errors(vec![field_error(
                "sku",
                "taken",
                "already used by another product",
            )]),
            ApiError::Conflict(Conflict::DuplicateEmail) => Problem::new(
                S::CONFLICT,
                "/problems/duplicate-email",
                "An account with this email exists",
            )
            .with_errors(vec![field_error("email", "taken", "already registered")]),
            ApiError::Conflict(Conflict::LastAdmin) => Problem::new(
                S::CONFLICT,
                "/problems/last-admin",
                "The last admin cannot be demoted or disabled",
            )
            .detail("make another user admin first"),
            ApiError::Conflict(Conflict::InsufficientStock) => {
                Problem::new(S::CONFLICT, "/problems/insufficient-stock", "Not enough stock")
                    .detail("the adjustment would take the stock below zero; nothing changed")
            }
            ApiError::Conflict(Conflict::StockLimit) => {
                Problem::new(S::CONFLICT, "/problems/stock-limit", "Stock limit reached")
                    .detail("the adjustment would take the stock above 2147483647; nothing changed")
            }
            ApiError::IdempotencyKeyInUse => Problem::new(
                S::CONFLICT,
                "/problems/idempotency-key-in-use",
                "A request with this Idempotency-Key is still running",
            )
            .detail("retry once the first request has finished"),
            ApiError::IdempotencyKeyReused => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "/problems/idempotency-key-reused",
                "This Idempotency-Key was used for a different request",
            )
            .detail("a key may only be reused with the same method, path and body"),
            ApiError::IdempotencyKeyLimit(wait) => Problem::new(
                S::TOO_MANY_REQUESTS,
                "/problems/idempotency-key-limit",
                "Too many live Idempotency-Keys",
            )
            .detail(format!(
                "a caller holds at most {} keys for 24 h; the oldest expires in {} s (requests \
                 without a key are served meanwhile)",
                crate::domain::idempotency::MAX_LIVE_KEYS,
                retry_after_secs(*wait)
            )),
            ApiError::PreconditionFailed => Problem::new(
                S::PRECONDITION_FAILED,
                "/problems/precondition-failed",
                "The resource has changed since you read it",
            )
            .detail("If-Match does not match the current ETag; fetch the resource again"),
            ApiError::Unavailable(_) => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "/problems/unavailable",
                "A dependency is unavailable; try again shortly",
            ),
            ApiError::Overloaded => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "/problems/overloaded",
                "The server is busy; try again shortly",
            )
            .detail("too many requests of this kind are running at once"),
            ApiError::Internal(_) => Problem::for_status(S::INTERNAL_SERVER_ERROR),
        }
    }
}

fn field_error(field: &str, code: &'static str, message: &str) -> FieldError {
    FieldError::new(field, Invalid::new(code, message))
}

fn retry_after_secs(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            // The cause goes to the log, once, inside the request's span (which carries the
            // request id); the client gets nothing of it.
            ApiError::Internal(cause) => tracing::error!(error = format!("{cause:#}"), "request failed"),
            ApiError::Unavailable(cause) => tracing::warn!(error = %cause, "dependency unavailable"),
            _ => {}
        }
        let mut response = self.problem().into_response();
        let headers = response.headers_mut();
        let set = |headers: &mut axum::http::HeaderMap, name, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        match &self {
            ApiError::Unauthenticated | ApiError::InvalidCredentials => {
                set(headers, header::WWW_AUTHENTICATE, "Bearer".into());
            }
            ApiError::InvalidToken => {
                set(
                    headers,
                    header::WWW_AUTHENTICATE,
                    r#"Bearer error="invalid_token""#.into(),
                );
            }
            ApiError::TooManyRequests(wait) | ApiError::IdempotencyKeyLimit(wait) => {
                set(headers, header::RETRY_AFTER, retry_after_secs(*wait).to_string());
            }
            ApiError::Unavailable(_) | ApiError::Overloaded => {
                set(headers, header::RETRY_AFTER, "1".into());
            }
            _ => {}
        }
        response
    }
}
