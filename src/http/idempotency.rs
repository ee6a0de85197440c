//! `Idempotency-Key` on POSTs that create: the first request with a key runs and its answer is
//! kept; the same request again replays that answer; another request with the key is refused.

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::caller::AuthUser;
use super::error::{ApiError, FieldError};
use crate::domain::idempotency::{IdempotencyKey, fingerprint};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::idempotency::{Begin, Completion, Render, StoredResponse};

pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Handed to the handler of a keyed request, so its write transaction also completes the key.
#[derive(Debug, Clone)]
pub struct IdempotencyContext {
    /// The caller the key belongs to.
    pub user_id: i64,
    /// The key as sent.
    pub key: String,
}

/// Marks a response whose key was completed inside the handler's transaction.
#[derive(Debug, Clone, Copy)]
struct CompletedInTransaction;

/// The one call an idempotent POST makes: runs `write` with the key's completion (when the
/// request carries a key), so the key is completed with `render`'s answer inside the write's
/// transaction, and answers with that same rendering, marked so the middleware does not store
/// it again. A new idempotent POST needs only this, a store write taking an
/// `Option<Completion<T>>` (see `store::idempotency::write_transaction!`), and its route in the
/// idempotent group of the route table.
pub async fn respond<T, Fut>(
    key: Option<axum::Extension<IdempotencyContext>>,
    render: Render<T>,
    write: impl FnOnce(Option<Completion<T>>) -> Fut,
) -> Result<Response, ApiError>
where
    Fut: Future<Output = Result<T, StoreError>>,
{
    let completion = key.as_ref().map(|ctx| Completion {
        user_id: ctx.user_id,
        key: ctx.key.clone(),
        render,
    });
    let value = write(completion).await?;
    let stored = render(&value).map_err(|e| ApiError::Internal(e.into()))?;
    let mut response = into_response(stored);
    if key.is_some() {
        response.extensions_mut().insert(CompletedInTransaction);
    }
    Ok(response)
}

/// Headers worth replaying: what a client acts on. Request ids, dates and the like are not.
const KEPT_HEADERS: [&str; 4] = ["content-type", "location", "etag", "link"];

/// A JSON answer in its stored form, from which both the first response and every replay are
/// built, so a replay is the first answer byte for byte.
pub fn stored_json(
    status: StatusCode,
    value: &impl serde::Serialize,
    headers: &[(&str, String)],
) -> Result<StoredResponse, serde_json::Error> {
    let mut kept = vec![("content-type".to_owned(), "application/json".to_owned())];
    kept.extend(
        headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone())),
    );
    Ok(StoredResponse {
        status: status.as_u16(),
        headers: kept,
        body: serde_json::to_vec(value)?,
    })
}

fn into_response(stored: StoredResponse) -> Response {
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
    let record = StoredResponse {
        status: status.as_u16(),
        headers,
        body: bytes.to_vec(),
    };
    if let Err(error) = state
        .store
        .complete_idempotent(user.id, key.as_str(), &record)
        .await
    {
        tracing::warn!(%error, "cannot store an idempotent answer");
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
