//! `Idempotency-Key` on POSTs that create: the first request with a key runs and its answer is
//! kept; the same request again replays that answer; another request with the key is refused.

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::auth::AuthUser;
use super::error::{ApiError, FieldError};
use crate::domain::idempotency::{IdempotencyKey, StoredResponse, fingerprint};
use crate::state::AppState;
use crate::store::idempotency::{Begin, Completion};

pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Handed to the handler of a keyed request, so its write transaction also completes the key.
#[derive(Debug, Clone)]
pub struct IdempotencyContext {
    pub user_id: i64,
    pub key: String,
}

impl IdempotencyContext {
    pub fn completion<'a, T>(
        &'a self,
        render: &'a (dyn Fn(&T) -> StoredResponse + Send + Sync),
    ) -> Completion<'a, T> {
        Completion {
            user_id: self.user_id,
            key: &self.key,
            render,
        }
    }
}

/// Marks a response whose key was completed inside the handler's transaction.
#[derive(Debug, Clone, Copy)]
pub struct CompletedInTransaction;

/// Headers worth replaying: what a client acts on. Request ids, dates and the like are not.
const KEPT_HEADERS: [&str; 4] = ["content-type", "location", "etag", "link"];

/// The stored form of a response, and the response built from it. The two share this one
/// rendering, so a replay is the first answer byte for byte.
pub fn stored(status: StatusCode, headers: Vec<(String, String)>, body: Vec<u8>) -> StoredResponse {
    StoredResponse {
        status: status.as_u16(),
        headers,
        body,
    }
}

pub fn into_response(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Whether an answer is the request's outcome, to replay on a retry. A 5xx is our fault; a 401,
/// 403 or 429 says who may call and how often, which changes (a customer promoted to staff must
/// not be replayed the 403 of the day before), and storing them would let any account fill
/// the table with requests that never ran.
fn worth_keeping(status: StatusCode) -> bool {
    !(status.is_server_error()
        || matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
        ))
}

/// Runs a keyed POST once: replays, refuses or runs it, and keeps its answer. Every refusal is
/// an [`ApiError`].
pub async fn middleware(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if request.method() != Method::POST {
        return Ok(next.run(request).await);
    }
    let Some(raw_key) = request.headers().get(&IDEMPOTENCY_KEY) else {
        return Ok(next.run(request).await);
    };
    let key = IdempotencyKey::parse(raw_key.as_bytes()).map_err(|invalid| {
        ApiError::InvalidHeader(vec![FieldError::new("Idempotency-Key", invalid)].into())
    })?;
    let (mut parts, body) = request.into_parts();
    // Keys are scoped to the caller, so the caller must be known first.
    let AuthUser(user) = AuthUser::from_request_parts(&mut parts, &state).await?;
    let body = to_bytes(body, state.config.http.body_limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let path = parts.uri.path_and_query().map_or("", |p| p.as_str());
    let print = fingerprint(parts.method.as_str(), path, &body);
    let stale_after = state.config.http.request_timeout + Duration::from_secs(30);
    match state
        .store
        .begin_idempotent(user.id, key.as_str(), &print, stale_after)
        .await?
    {
        Begin::Replay(stored) => {
            let mut response = into_response(stored);
            response
                .headers_mut()
                .insert(IDEMPOTENT_REPLAYED.clone(), HeaderValue::from_static("true"));
            return Ok(response);
        }
        Begin::Mismatch => return Err(ApiError::IdempotencyKeyReused),
        Begin::InFlight => return Err(ApiError::IdempotencyKeyInUse),
        Begin::LimitReached(wait) => return Err(ApiError::IdempotencyKeyLimit(wait)),
        Begin::Started => {}
    }
    parts.extensions.insert(IdempotencyContext {
        user_id: user.id,
        key: key.as_str().to_owned(),
    });
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    let status = response.status();
    if !worth_keeping(status) {
        // Not stored: a retry may succeed (after a fault of ours, a promotion, a wait).
        if let Err(error) = state.store.abandon_idempotent(user.id, key.as_str()).await {
            tracing::warn!(%error, "cannot release an idempotency key");
        }
        return Ok(response);
    }
    if response.extensions().get::<CompletedInTransaction>().is_some() {
        return Ok(response);
    }
    // Answers that wrote nothing (4xx) are stored on their own.
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("cannot read an answer to keep: {e}")))?;
    let headers = KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            parts
                .headers
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .map(|v| (name.to_string(), v.to_owned()))
        })
        .collect();
    let record = stored(status, headers, bytes.to_vec());
    if let Err(error) = state
        .store
        .complete_idempotent(user.id, key.as_str(), &record)
        .await
    {
        tracing::warn!(%error, "cannot store an idempotent answer");
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
