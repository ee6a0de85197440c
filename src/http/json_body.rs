//! Request bodies: a JSON object read field by field, so every field's problem can be named.
//!
//! We keep each field's raw JSON text until a domain type parses it: a price's digits reach
//! [`Price::parse`](crate::domain::money::Price::parse) exactly as the client wrote them, and
//! "absent", `null` and a value stay three different things, as JSON merge patch needs.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, StatusCode, header};
use serde_json::value::RawValue;

use super::error::{ApiError, FieldError, FieldErrors};
pub use super::json_object::JsonObject;
use super::json_object::MAX_KEPT_FIELDS;
use crate::domain::number::{self, NumberError};
use crate::domain::product::Invalid;

/// Whether a `Content-Type` is one of `accepted` (parameters allowed, charset only UTF-8).
fn content_type_is(headers: &axum::http::HeaderMap, accepted: &[&str]) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut parts = value.split(';').map(str::trim);
    let essence = parts.next().unwrap_or_default().to_ascii_lowercase();
    let charset_ok = parts.all(|param| match param.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    });
    charset_ok && accepted.contains(&essence.as_str())
}

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let accepted: &[&str] = if request.method() == Method::PATCH {
            &["application/merge-patch+json", "application/json"]
        } else {
            &["application/json"]
        };
        if !content_type_is(request.headers(), accepted) {
            return Err(ApiError::UnsupportedMediaType(accepted[0]));
        }
        let bytes = read_body(request, state).await?;
        JsonObject::read(&bytes)
    }
}

/// The whole body, within the body limit: 413 past it; a body cut off mid-way reads as malformed.
pub async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::MalformedJson("the body could not be read".into())
        }
    })
}

/// A field as the body had it.
pub enum Slot {
    Absent,
    Null,
    Value(Box<RawValue>),
}

/// Reads fields out of a [`JsonObject`], collecting every problem instead of stopping at the
/// first, then rejects what nobody read.
pub struct Fields {
    body: JsonObject,
    errors: FieldErrors,
}

impl Fields {
    pub fn new(body: JsonObject) -> Self {
        Fields {
            body,
            errors: FieldErrors::default(),
        }
    }

    fn take(&mut self, name: &str) -> Slot {
        match self.body.take(name) {
            None => Slot::Absent,
            Some(raw) if raw.get() == "null" => Slot::Null,
            Some(raw) => Slot::Value(raw),
        }
    }

    fn record<T>(&mut self, name: &str, result: Result<T, Invalid>) -> Option<T> {
        result
            .map_err(|e| self.errors.push(FieldError::new(name, e)))
            .ok()
    }

    /// A field that must be present and not null (POST, PUT).
    pub fn required<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&RawValue) -> Result<T, Invalid>,
    ) -> Option<T> {
        match self.take(name) {
            // In a body past the kept fields, the field may have been sent after them: the
            // body is refused for its size anyway, so say nothing false about this field.
            Slot::Absent if self.body.overflowed() => None,
            Slot::Absent => self.record(name, Err(Invalid::new("required", "is required"))),
            Slot::Null => self.record(name, Err(null_not_allowed())),
            Slot::Value(raw) => {
                let parsed = parse(&raw);
                self.record(name, parsed)
            }
        }
    }

    /// A field that may be absent but not null (a PATCH of a required field).
    pub fn optional<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&RawValue) -> Result<T, Invalid>,
    ) -> Option<T> {
        match self.take(name) {
            Slot::Absent => None,
            Slot::Null => self.record(name, Err(null_not_allowed())),
            Slot::Value(raw) => {
                let parsed = parse(&raw);
                self.record(name, parsed)
            }
        }
    }

    /// A nullable field: `None` when absent, `Some(None)` when null.
    pub fn nullable<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&RawValue) -> Result<T, Invalid>,
    ) -> Option<Option<T>> {
        match self.take(name) {
            Slot::Absent => None,
            Slot::Null => Some(None),
            Slot::Value(raw) => {
                let parsed = parse(&raw);
                self.record(name, parsed).map(Some)
            }
        }
    }

    /// Ends the reading: any field left is unknown, or read-only when listed as such.
    /// Past the listed errors the rest are only counted, so 100,000 unknown fields cost a
    /// count, not 100,000 messages.
    pub fn finish(self, read_only: &[&str]) -> Result<(), ApiError> {
        self.finish_errors(read_only).map_err(ApiError::Validation)
    }

    /// [`Fields::finish`], the errors as they are (an import row reports them with its line).
    pub fn finish_errors(mut self, read_only: &[&str]) -> Result<(), FieldErrors> {
        if self.body.overflowed() {
            self.errors.push(FieldError::new(
                "body",
                Invalid::new(
                    "too_many_fields",
                    format!("holds more than {MAX_KEPT_FIELDS} fields"),
                ),
            ));
        }
        let (unread, overflow) = self.body.into_unread();
        for name in unread {
            self.errors.push_with(|| {
                let invalid = if read_only.contains(&name.as_str()) {
                    Invalid::new("read_only", "is set by the server and cannot be written")
                } else {
                    Invalid::new("unknown_field", "is not a field of this resource")
                };
                FieldError::new(name, invalid)
            });
        }
        self.errors.count_unlisted(overflow);
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

fn null_not_allowed() -> Invalid {
    Invalid::new("null_not_allowed", "must not be null")
}

/// Decoders from raw JSON to plain values, each with the error a client should see.
pub mod decode {
    use super::*;

    /// A JSON string without NUL: PostgreSQL cannot store one in text, and no field of this
    /// API has a use for it.
    pub fn string(raw: &RawValue) -> Result<String, Invalid> {
        let text = string_with_nul(raw)?;
        if text.contains('\0') {
            return Err(Invalid::new("invalid_character", "must not contain NUL"));
        }
        Ok(text)
    }

    /// Any JSON string, NUL included: only for a value that is checked later by a rule of its
    /// own (the login email, which a malformed value does not make a 422).
    pub fn string_with_nul(raw: &RawValue) -> Result<String, Invalid> {
        serde_json::from_str::<String>(raw.get())
            .map_err(|_| Invalid::new("invalid_type", "must be a string"))
    }

    pub fn boolean(raw: &RawValue) -> Result<bool, Invalid> {
        match raw.get() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(Invalid::new("invalid_type", "must be true or false")),
        }
    }

    /// A JSON number with an integral value (`3`, `3.0`, `3e2`: JSON Schema's `integer`), read
    /// with the one number grammar; a fraction or a value past an i64 is `out_of_range`, so the
    /// field's own range check sees only exact values.
    pub fn integer(raw: &RawValue) -> Result<i64, Invalid> {
        let text = raw.get();
        if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            return Err(Invalid::new("invalid_type", "must be an integer"));
        }
        let units = number::Decimal::parse(text).and_then(|d| d.to_units(0));
        match units.map(i64::try_from) {
            Ok(Ok(n)) => Ok(n),
            Err(NumberError::Fraction) => Err(Invalid::new("out_of_range", "must be a whole number")),
            Err(NumberError::Syntax) => Err(Invalid::new("invalid_type", "must be an integer")),
            Ok(Err(_)) | Err(NumberError::OutOfRange) => Err(Invalid::new("out_of_range", "is out of range")),
        }
    }

    /// Decimal text as the client wrote it, and whether it came as a JSON string or number.
    pub enum Decimal {
        String(String),
        Number(String),
    }

    /// A JSON number, or a string holding one; returns the decimal text as written.
    pub fn decimal_text(raw: &RawValue) -> Result<Decimal, Invalid> {
        let text = raw.get();
        if text.starts_with('"') {
            string(raw).map(Decimal::String)
        } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            Ok(Decimal::Number(text.to_owned()))
        } else {
            Err(Invalid::new(
                "invalid_type",
                "must be a number or a string such as \"19.99\"",
            ))
        }
    }
}

#[cfg(test)]
#[path = "json_body_tests.rs"]
mod tests;
