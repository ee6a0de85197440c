//! Extractors that turn the parts of a request into domain values, or into our problems.

use axum::extract::{FromRequestParts, Path};
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::domain::etag::Precondition;

/// A resource id from the path: a positive integer in canonical form. Anything else (letters,
/// signs, leading zeros, overflow) names no resource, so it is a 404.
#[derive(Debug, Clone, Copy)]
pub struct ResourceId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for ResourceId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        parse_id(&raw).map(ResourceId).ok_or(ApiError::NotFound)
    }
}

/// Two resource ids from the path (a resource and one of its children), each as [`ResourceId`].
#[derive(Debug, Clone, Copy)]
pub struct ResourceIds(pub i64, pub i64);

impl<S: Send + Sync> FromRequestParts<S> for ResourceIds {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((first, second)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        match (parse_id(&first), parse_id(&second)) {
            (Some(first), Some(second)) => Ok(ResourceIds(first, second)),
            _ => Err(ApiError::NotFound),
        }
    }
}

pub fn parse_id(raw: &str) -> Option<i64> {
    let canonical = !raw.is_empty() && !raw.starts_with('0') && raw.bytes().all(|b| b.is_ascii_digit());
    canonical.then(|| raw.parse::<i64>().ok()).flatten()
}

/// The `If-Match` of a write. Several header lines are combined as RFC 9110 says; a value that is
/// not visible ASCII can match nothing.
impl<S: Send + Sync> FromRequestParts<S> for Precondition {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(match combined(parts, header::IF_MATCH) {
            None => Precondition::Always,
            Some(value) => Precondition::IfMatch(value),
        })
    }
}

/// The `If-None-Match` of a read, when sent.
#[derive(Debug, Clone)]
pub struct IfNoneMatch(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(IfNoneMatch(combined(parts, header::IF_NONE_MATCH)))
    }
}

fn combined(parts: &Parts, name: header::HeaderName) -> Option<String> {
    let values: Vec<String> = parts
        .headers
        .get_all(name)
        .iter()
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .unwrap_or_else(|_| "\"\u{0}\"".to_owned())
        })
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

#[cfg(test)]
mod tests {
    use super::parse_id;

    #[test]
    fn only_canonical_positive_integers_are_ids() {
        assert_eq!(parse_id("42"), Some(42));
        assert_eq!(parse_id("9223372036854775807"), Some(i64::MAX));
        for bad in [
            "",
            "0",
            "042",
            "-1",
            "+1",
            "abc",
            "1.0",
            "9223372036854775808",
            " 1",
        ] {
            assert_eq!(parse_id(bad), None, "{bad:?}");
        }
    }
}
