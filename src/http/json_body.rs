//! Request bodies: a JSON object read field by field, so every field's problem can be named.
//!
//! We keep each field's raw JSON text until a domain type parses it: a price's digits reach
//! [`Price::parse`](crate::domain::money::Price::parse) exactly as the client wrote them, and
//! "absent", `null` and a value stay three different things, as JSON merge patch needs.

use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, StatusCode, header};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::error::{ApiError, FieldError};
use crate::domain::product::Invalid;

/// A request body that is a JSON object, in the order its fields were sent.
#[derive(Debug)]
pub struct JsonObject {
    entries: Vec<(String, Box<RawValue>)>,
}

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = JsonObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonObject, A::Error> {
                let mut entries: Vec<(String, Box<RawValue>)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format!("duplicate field `{key}`")));
                    }
                    entries.push((key, value));
                }
                Ok(JsonObject { entries })
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

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
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::MalformedJson("the body could not be read".into())
            }
        })?;
        serde_json::from_slice::<JsonObject>(&bytes).map_err(|error| match error.classify() {
            serde_json::error::Category::Data => ApiError::Validation(vec![FieldError {
                field: "body".into(),
                code: "invalid_type",
                message: error.to_string(),
            }]),
            _ => ApiError::MalformedJson(error.to_string()),
        })
    }
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
    entries: Vec<(String, Box<RawValue>)>,
    errors: Vec<FieldError>,
}

impl Fields {
    pub fn new(body: JsonObject) -> Self {
        Fields {
            entries: body.entries,
            errors: Vec::new(),
        }
    }

    fn take(&mut self, name: &str) -> Slot {
        match self.entries.iter().position(|(k, _)| k == name) {
            None => Slot::Absent,
            Some(index) => {
                let (_, raw) = self.entries.remove(index);
                if raw.get() == "null" {
                    Slot::Null
                } else {
                    Slot::Value(raw)
                }
            }
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
    pub fn finish(mut self, read_only: &[&str]) -> Result<(), ApiError> {
        for (name, _) in std::mem::take(&mut self.entries) {
            let invalid = if read_only.contains(&name.as_str()) {
                Invalid::new("read_only", "is set by the server and cannot be written")
            } else {
                Invalid::new("unknown_field", "is not a field of this resource")
            };
            self.errors.push(FieldError::new(name, invalid));
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode::integer;
    use serde_json::value::RawValue;

    fn int(text: &str) -> Result<i64, &'static str> {
        integer(&RawValue::from_string(text.to_owned()).unwrap()).map_err(|e| e.code)
    }

    #[test]
    fn integers_follow_json_schema() {
        assert_eq!(int("12"), Ok(12));
        assert_eq!(int("-7"), Ok(-7));
        assert_eq!(int("12.0"), Ok(12));
        assert_eq!(int("2147483646.0"), Ok(2_147_483_646));
        assert_eq!(int("1e2"), Ok(100));
        assert_eq!(int("1.5e1"), Ok(15));
        assert_eq!(int("-0.0"), Ok(0));
        assert_eq!(int("1200e-2"), Ok(12));
        assert_eq!(int("1.5"), Err("invalid_type"));
        assert_eq!(int("1e-1"), Err("invalid_type"));
        assert_eq!(int("\"3\""), Err("invalid_type"));
        assert_eq!(int("true"), Err("invalid_type"));
        assert_eq!(int("9223372036854775808"), Err("out_of_range"));
        assert_eq!(int("1e30"), Err("out_of_range"));
    }
}

fn null_not_allowed() -> Invalid {
    Invalid::new("null_not_allowed", "must not be null")
}

/// Decoders from raw JSON to plain values, each with the error a client should see.
pub mod decode {
    use super::*;

    pub fn string(raw: &RawValue) -> Result<String, Invalid> {
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

    /// A JSON number with an integral value (`3`, `3.0`, `3e2`: JSON Schema's `integer`);
    /// `out_of_range` when it does not fit an i64.
    pub fn integer(raw: &RawValue) -> Result<i64, Invalid> {
        let not_integer = || Invalid::new("invalid_type", "must be an integer");
        let text = raw.get();
        if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            return Err(not_integer());
        }
        if let Ok(n) = text.parse::<i64>() {
            return Ok(n);
        }
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
            Some((m, e)) => (m, e.parse::<i64>().map_err(|_| not_integer())?),
            None => (unsigned, 0),
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = format!("{int_part}{frac_part}");
        let scale = exponent - frac_part.len() as i64;
        let significant = digits.trim_start_matches('0');
        let trailing = significant.len() - significant.trim_end_matches('0').len();
        if significant.is_empty() {
            return Ok(0);
        }
        if scale + (trailing as i64) < 0 {
            return Err(not_integer());
        }
        if significant.len() as i64 + scale > 19 {
            return Err(Invalid::new("out_of_range", "is out of range"));
        }
        let value: i128 = if scale >= 0 {
            significant.parse::<i128>().map_err(|_| not_integer())? * 10i128.pow(scale as u32)
        } else {
            let keep = (significant.len() as i64 + scale) as usize;
            significant[..keep].parse::<i128>().map_err(|_| not_integer())?
        };
        let value = if negative { -value } else { value };
        i64::try_from(value).map_err(|_| Invalid::new("out_of_range", "is out of range"))
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
