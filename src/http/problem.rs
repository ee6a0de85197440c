//! RFC 9457 problem documents: the body of every error answer.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::field_errors::{DETAIL_BUDGET, FieldError, FieldErrors, clip};
use super::request_context;

/// The media type of every problem body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Sent only if a problem could not be serialised.
const UNSERIALISABLE: &[u8] =
    br#"{"type":"/problems/internal","title":"Internal server error","status":500,"request_id":null}"#;

/// The problem body; `type` is what clients branch on.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"type": "/problems/validation", "title": "Request body is invalid", "status": 422, "detail": "1 field is invalid", "errors": [{"field": "price", "code": "too_many_decimals", "message": "at most 2 decimal places"}], "request_id": "01938f6e5c2a7b3e8f4d2a1b0c9d8e7f"}))]
pub struct Problem {
    /// A stable relative URI per kind of problem; branch on it.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "/problems/validation")]
    pub kind: &'static str,
    /// A short summary of the problem type; the same for every occurrence.
    #[schema(value_type = String)]
    pub title: &'static str,
    /// The HTTP status code, repeated for clients that lose it.
    pub status: u16,
    /// What went wrong in this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Every invalid field, for validation problems (at most 20).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The `X-Request-Id` of the request, to find it in the logs.
    pub request_id: Option<String>,
}

impl Problem {
    /// A problem of `kind` with its `title`, tagged with the current request's id.
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

    /// Lists exactly these field errors.
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

    /// The response with one extension member besides the standard ones (RFC 9457 allows them).
    pub fn with_member(self, name: &str, value: serde_json::Value) -> Response {
        let status = self.status();
        let Ok(serde_json::Value::Object(mut body)) = serde_json::to_value(&self) else {
            return self.into_response();
        };
        body.insert(name.to_owned(), value);
        let mut response = (status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }

    /// The HTTP status the problem is answered with.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let (status, body) = match serde_json::to_vec(&self) {
            Ok(body) => (self.status(), body),
            // Cannot happen for these plain fields; if it did, an empty body would break every
            // client that parses problems, so the one body that needs no serialiser is sent.
            Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, UNSERIALISABLE.to_vec()),
        };
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}
