//! Cached routes' answers: rendered once into a [`cache::Answer`], sent the same way whether
//! they came from the cache or the database, with `Cache-Status` (RFC 9211) when the cache is on.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

use crate::cache::{Answer, Lookup};
use crate::domain::etag;
use crate::http::error::ApiError;

static CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// A `200` JSON answer with its `ETag` and `Link`, as the cache keeps it.
pub fn render(value: &impl Serialize, etag: Option<&str>, link: Option<&str>) -> Result<Answer, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Answer {
        body: body.into(),
        etag: etag.and_then(|v| HeaderValue::from_str(v).ok()),
        link: link.and_then(|v| HeaderValue::from_str(v).ok()),
    })
}

/// Whether `if_none_match` names the answer's `ETag`: the answer is a `304`.
pub fn not_modified(answer: &Answer, if_none_match: Option<&str>) -> bool {
    answer.etag.as_ref().is_some_and(|tag| {
        tag.to_str()
            .is_ok_and(|tag| if_none_match.is_some_and(|header| etag::matches(header, tag, true)))
    })
}

/// The answer, or `304` with its `ETag` when `if_none_match` names it.
pub fn respond(answer: &Answer, lookup: Option<Lookup>, if_none_match: Option<&str>) -> Response {
    let mut response = if not_modified(answer, if_none_match) {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = Response::new(Body::from(answer.body.clone()));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(link) = &answer.link {
            response.headers_mut().insert(header::LINK, link.clone());
        }
        response
    };
    let headers = response.headers_mut();
    if let Some(tag) = &answer.etag {
        headers.insert(header::ETAG, tag.clone());
    }
    if let Some(lookup) = lookup {
        headers.insert(CACHE_STATUS.clone(), cache_status(lookup));
    }
    response
}

fn cache_status(lookup: Lookup) -> HeaderValue {
    HeaderValue::from_static(match lookup {
        Lookup::Hit => "tienda; hit",
        Lookup::Miss => "tienda; fwd=miss",
        Lookup::Bypass => "tienda; fwd=bypass",
    })
}
