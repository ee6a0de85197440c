//! `/api/v1/auth`: register, login, refresh, logout, me.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::instrument;

use crate::http::caller::AuthUser;
use crate::http::dto::user::{
    LoginBody, TokenResponse, UserResponse, parse_login, parse_refresh, parse_registration,
};
use crate::http::error::ApiError;
use crate::http::json_body::JsonObject;
use crate::state::AppState;

/// Token answers must never be cached by a browser or a proxy (RFC 6749 §5.1).
fn no_store(body: TokenResponse) -> Response {
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Register a customer account.
///
/// Creates an account with the `customer` role (a `role` field is refused; admins change
/// roles with `PATCH /api/v1/users/{id}`). No token is needed. Failed registrations are throttled
/// per client address (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    extensions(("x-problems" = json!([400,409,413,415,422,429]))),
    request_body = crate::http::openapi::schemas::RegisterRequest,
    responses((status = 201, description = "Registered as a customer", body = UserResponse)))]
#[instrument(skip_all)]
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let (email, password) = parse_registration(body)?;
    let client = state.config.auth.trusted_proxies.client(peer.ip(), &headers);
    let user = state.auth.register(&email, password, client).await?;
    Ok((StatusCode::CREATED, Json(UserResponse::from(user))).into_response())
}

/// Log in: an access token and a refresh token.
///
/// Trades an email and a password for a short-lived access token (send it as
/// `Authorization: Bearer <token>`) and a refresh token. A wrong password, an unknown email and a
/// disabled account all get the same 401 `/problems/invalid-credentials`; failed logins are
/// throttled per email and per client address (429 with `Retry-After`). No token is needed.
///
/// Also accepts the OAuth 2.0 password grant as a form (`grant_type=password`, the email as
/// `username`, `password`), as Swagger UI's Authorize dialog sends it; the answers are the same.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    extensions(("x-problems" = json!([400,401,413,415,422,429]))),
    request_body = crate::http::openapi::schemas::LoginRequest,
    responses((status = 200, description = "Tokens", body = TokenResponse)))]
#[instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: LoginBody,
) -> Result<Response, ApiError> {
    let (email, password) = parse_login(body)?;
    let client = state.config.auth.trusted_proxies.client(peer.ip(), &headers);
    let (user, pair) = state.auth.login(&email, password, client).await?;
    crate::http::request_context::set_user(user.id);
    Ok(no_store(pair.into()))
}

/// Trade a refresh token for a new pair of tokens.
///
/// The presented refresh token is spent: presenting it again revokes its whole family
/// (every token of that login). No access token is needed.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    extensions(("x-problems" = json!([400,401,413,415,422]))),
    request_body = crate::http::openapi::schemas::RefreshRequest,
    responses((status = 200, description = "A new pair; the presented refresh token is spent", body = TokenResponse)))]
#[instrument(skip_all)]
pub async fn refresh(State(state): State<AppState>, body: JsonObject) -> Result<Response, ApiError> {
    let token = parse_refresh(body)?;
    let pair = state.auth.refresh(&token).await?;
    Ok(no_store(pair.into()))
}

/// Log out: revoke a refresh token.
///
/// Revokes every refresh token of the login the presented one belongs to. Access tokens
/// already issued stay valid until they expire. No access token is needed.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    extensions(("x-problems" = json!([400,413,415,422]))),
    request_body = crate::http::openapi::schemas::RefreshRequest,
    responses((status = 204, description = "Every refresh token of this login is revoked")))]
#[instrument(skip_all)]
pub async fn logout(State(state): State<AppState>, body: JsonObject) -> Result<StatusCode, ApiError> {
    let token = parse_refresh(body)?;
    state.auth.logout(&token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The calling user.
///
/// The account the bearer token belongs to.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    extensions(("x-problems" = json!([401]))),
    responses((status = 200, description = "The caller", body = UserResponse)),
    security(("bearer" = [])))]
#[instrument(skip_all)]
pub async fn me(AuthUser(user): AuthUser) -> Json<UserResponse> {
    Json(UserResponse::from(user))
}
