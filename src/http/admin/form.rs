//! A posted form becomes the JSON object the API would have been sent, so the API's own body
//! parsers (`http/dto/`) judge it: the same rules, the same per-field messages, no second copy.

use serde_json::{Map, Value};

use super::page::AdminError;
use crate::http::error::{ApiError, FieldErrors};
use crate::http::json_body::JsonObject;

/// A text field as typed.
pub fn text(value: &str) -> Value {
    Value::String(value.to_owned())
}

/// An optional text field: empty means absent (`null`).
pub fn optional_text(value: &str) -> Value {
    if value.is_empty() {
        Value::Null
    } else {
        text(value)
    }
}

/// A number field: an integer when it reads as one, else the text, which the API's parser then
/// refuses with its own message.
pub fn integer_or_text(value: &str) -> Value {
    value
        .trim()
        .parse::<i64>()
        .map_or_else(|_| text(value), Value::from)
}

/// The JSON object of `members`, read as a request body is.
pub fn json_object(members: Vec<(&str, Value)>) -> Result<JsonObject, AdminError> {
    let map: Map<String, Value> = members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let bytes = serde_json::to_vec(&Value::Object(map)).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(JsonObject::read(&bytes)?)
}

/// Each field's first message, by field name; messages for fields the form does not show are
/// joined into the second value.
pub fn messages(errors: &FieldErrors, shown: &[&str]) -> (Vec<(String, String)>, String) {
    let mut by_field: Vec<(String, String)> = Vec::new();
    let mut other = Vec::new();
    for error in errors.listed() {
        if shown.contains(&error.field.as_str()) {
            if !by_field.iter().any(|(f, _)| *f == error.field) {
                by_field.push((error.field.clone(), error.message.clone()));
            }
        } else {
            other.push(format!("{}: {}", error.field, error.message));
        }
    }
    (by_field, other.join("; "))
}

/// A problem's title and detail, for a notice.
pub fn explain(error: ApiError) -> String {
    let problem = error.problem();
    match problem.detail {
        Some(detail) => format!("{}: {detail}.", problem.title),
        None => format!("{}.", problem.title),
    }
}
