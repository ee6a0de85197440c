//! The one place where a failure becomes a status code and an RFC 9457 problem body.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

pub use super::field_errors::{FieldError, FieldErrors};
pub use super::problem::{PROBLEM_JSON, Problem};
use crate::auth::password::HashError;
use crate::domain::product::Invalid;
use crate::limits::Overloaded;
use crate::services::accounts::AuthError;
use crate::store::{Conflict, StoreError};

/// Every way a request can fail. Handlers, extractors and middleware return these; only
/// [`ApiError::into_response`] picks the status and the headers that go with it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body's fields are invalid (422).
    #[error("request body is invalid")]
    Validation(FieldErrors),
    /// Query parameters are invalid (400).
    #[error("query parameters are invalid")]
    InvalidQuery(FieldErrors),
    /// A header is invalid (400).
    #[error("invalid request header")]
    InvalidHeader(FieldErrors),
    /// The query string does not decode (400).
    #[error("malformed query string")]
    MalformedQuery,
    /// The body is not JSON (400); the reason is quoted.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// The body is not of the expected media type (415).
    #[error("unsupported media type")]
    UnsupportedMediaType(&'static str),
    /// The body is over the limit (413).
    #[error("payload too large")]
    PayloadTooLarge,
    /// No such resource or route (404).
    #[error("not found")]
    NotFound,
    /// The resource existed and has expired (410).
    #[error("gone")]
    Gone(&'static str),
    /// An import file's header is wrong (422, before any job exists).
    #[error("import file refused")]
    ImportRefused(FieldErrors),
    /// No credentials were presented.
    #[error("authentication required")]
    Unauthenticated,
    /// A bearer token or refresh token that is malformed, expired, revoked or replayed.
    #[error("invalid token")]
    InvalidToken,
    /// Wrong email or password (401).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Authenticated but not allowed (403).
    #[error("forbidden")]
    Forbidden,
    /// Too many attempts; retry after this (429).
    #[error("too many requests")]
    TooManyRequests(Duration),
    /// A named conflict with the stored state (409).
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    /// `If-Match` does not hold (412).
    #[error("precondition failed")]
    PreconditionFailed,
    /// The key's first request is still running (409).
    #[error("idempotency key in use")]
    IdempotencyKeyInUse,
    /// The key was used for another request (422).
    #[error("idempotency key reused with another request")]
    IdempotencyKeyReused,
    /// The caller holds the most live idempotency keys allowed; the oldest expires after this.
    #[error("too many idempotency keys")]
    IdempotencyKeyLimit(Duration),
    /// A dependency failed to answer; the cause is kept for the log.
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// The instance cannot serve: a dependency is down (`checks` says `up` or `down` per
    /// dependency) or it is draining before shutdown.
    #[error("not ready: {detail}")]
    NotReady {
        /// What is wrong, for the problem's detail.
        detail: String,
        /// `up` or `down` per dependency, when they were probed.
        checks: Option<Map<String, Value>>,
    },
    /// Too much of an expensive kind of work (password hashing, relevance search) is running;
    /// no slot freed within the wait.
    #[error("overloaded")]
    Overloaded,
    /// Our fault (500); the cause is logged, never sent.
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
            error @ StoreError::Unavailable(_) => ApiError::Unavailable(error.into()),
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
            ApiError::Gone(detail) => {
                Problem::new(S::GONE, "/problems/gone", "No longer available").detail(*detail)
            }
            ApiError::ImportRefused(errors) => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "/problems/import-rejected",
                "The import file was refused",
            )
            .errors(errors),
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
            ApiError::Conflict(Conflict::JobFinished) => {
                Problem::new(S::CONFLICT, "/problems/job-finished", "The job has finished")
                    .detail("a finished job cannot be cancelled")
            }
            ApiError::Conflict(Conflict::JobNotFinished) => Problem::new(
                S::CONFLICT,
                "/problems/job-not-finished",
                "The job has not finished",
            )
            .detail("the file is served once the export has succeeded"),
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
            ApiError::NotReady { detail, .. } => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "/problems/unavailable",
                "A dependency is unavailable; try again shortly",
            )
            .detail(detail.clone()),
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

fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// How long a client should wait before trying again, the one rule for `Retry-After`: the
/// known wait of a limit, rounded up; a second when a dependency or a gate is busy (the probe
/// and the gates wait a second themselves, so sooner is pointless and later needlessly slow).
fn retry_after(error: &ApiError) -> Option<u64> {
    match error {
        ApiError::TooManyRequests(wait) | ApiError::IdempotencyKeyLimit(wait) => {
            Some(retry_after_secs(*wait))
        }
        ApiError::Unavailable(_) | ApiError::NotReady { .. } | ApiError::Overloaded => Some(1),
        _ => None,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let mut response = match &self {
            ApiError::NotReady {
                checks: Some(checks), ..
            } => problem.with_member("checks", Value::Object(checks.clone())),
            _ => problem.into_response(),
        };
        let headers = response.headers_mut();
        let challenge = match &self {
            ApiError::Unauthenticated | ApiError::InvalidCredentials => Some("Bearer"),
            ApiError::InvalidToken => Some(r#"Bearer error="invalid_token""#),
            _ => None,
        };
        if let Some(challenge) = challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if let Some(secs) = retry_after(&self) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        let cause = match &self {
            ApiError::Internal(cause) => Some(super::failure_log::Cause::Internal(format!("{cause:#}"))),
            // The store's message already quotes its source.
            ApiError::Unavailable(cause) => Some(super::failure_log::Cause::Unavailable(cause.to_string())),
            _ => None,
        };
        if let Some(cause) = cause {
            response.extensions_mut().insert(cause);
        }
        response
    }
}
