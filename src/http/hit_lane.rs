//! The hit lane: a cache hit of `GET /api/v1/products/{id}` answered by the envelope, before
//! routing and the tower layers. Everything else the envelope does (request id, span, metrics,
//! the log line, security headers) still happens; what the lane skips is what a hit never needed:
//! the router's match and its boxed layers, the extractors, the timeout's timer.
//!
//! The lane answers only what the routed handler would answer byte for byte, and leaves every
//! other request to it: a path it would read differently, a `HEAD`, a protected read (the token
//! is checked first, by the route), a draining instance (the route adds `Connection: close`), an
//! answer large enough to be compressed (the compression layer's `Vary`), and every miss or
//! bypass. `tests/api/hit_lane.rs` sends the same random requests both ways and compares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::Response;

use super::cached;
use super::extract::parse_id;
use crate::cache::{Cache, Lookup};
use crate::state::AppState;

/// The route template the lane answers for, as routing labels it in metrics and logs.
pub const PRODUCT_ROUTE: &str = "/api/v1/products/{id}";

const PRODUCT_PREFIX: &str = "/api/v1/products/";

/// Answers larger than this are compressed by the router's layer, which also adds `Vary`; the
/// lane leaves them to it (`http::app`'s `SizeAbove`).
pub const COMPRESS_ABOVE: u64 = 1024;

#[derive(Clone)]
pub struct HitLane {
    cache: Cache,
    closing: Arc<AtomicBool>,
}

impl HitLane {
    /// The lane of an instance, or `None` when it has no cache or its reads need a token.
    pub fn new(state: &AppState) -> Option<Self> {
        (state.cache.is_on() && !state.config.auth.protect_reads).then(|| HitLane {
            cache: state.cache.clone(),
            closing: Arc::clone(&state.closing),
        })
    }

    /// The answer to `request` when it is a cache hit the lane may serve; `None` sends it on
    /// through the router.
    /// (The request's parts, not the request: its body is not `Sync`, so the future could not
    /// hold a reference to it.)
    pub async fn answer(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
        if method != Method::GET || uri.query().is_some() {
            return None;
        }
        let id = parse_id(uri.path().strip_prefix(PRODUCT_PREFIX)?)?;
        // While draining the route marks its answers `Connection: close`.
        if self.closing.load(Ordering::SeqCst) {
            return None;
        }
        let if_none_match = match headers.get(header::IF_NONE_MATCH) {
            None => None,
            // Several lines, or one that is not visible ASCII: the route's extractor combines them.
            Some(_) if headers.get_all(header::IF_NONE_MATCH).iter().nth(1).is_some() => {
                return None;
            }
            Some(value) => Some(value.to_str().ok()?),
        };
        let answer = self.cache.product_hit(id).await?;
        if answer.body.len() as u64 > COMPRESS_ABOVE && !cached::not_modified(&answer, if_none_match) {
            return None;
        }
        crate::metrics::cache_request("product", Lookup::Hit.as_str());
        Some(cached::respond(&answer, Some(Lookup::Hit), if_none_match))
    }
}
