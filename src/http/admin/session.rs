//! Console sessions: sign-in through the accounts service (the same users, passwords and login
//! throttle as the API), a server-side session behind an `HttpOnly`, `SameSite=Strict` cookie
//! scoped to `/admin` (`Secure` in production), and the CSRF token every POST must echo.
//!
//! A session is no stronger than the user's tokens: it is looked up on every request together
//! with the user's current role and status (a demoted or disabled user loses it at once), it
//! expires after [`SESSION_TTL`], and it is revoked on sign-out and when the user is disabled.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::page::{AdminError, html, see_other};
use super::views::{Chrome, SignInPage};
use crate::auth::tokens::{hash_refresh_token, new_refresh_token};
use crate::config::Environment;
use crate::domain::user::{Password, Role};
use crate::http::error::ApiError;
use crate::services::accounts::AuthError;
use crate::state::AppState;
use crate::store::admin_sessions::AdminSession;

const SESSION_COOKIE: &str = "tienda_admin";
/// Before sign-in there is no session: the sign-in form's token is a double-submit cookie.
const SIGN_IN_COOKIE: &str = "tienda_admin_signin";
/// How long a console session lasts from its sign-in.
const SESSION_TTL: chrono::Duration = chrono::Duration::hours(8);
/// The header htmx requests carry the token in (`admin.js`).
const CSRF_HEADER: &str = "x-csrf-token";

/// 256 random bits, URL-safe, and the SHA-256 the database keeps of them: a refresh token's
/// recipe, reused for session ids and CSRF tokens.
fn random_token() -> Result<(String, String), AdminError> {
    new_refresh_token().map_err(|e| AdminError::Api(ApiError::Internal(e.into())))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn set_cookie(response: &mut Response, state: &AppState, name: &str, value: &str, max_age: i64) {
    let secure = if state.config.environment == Environment::Production {
        "; Secure"
    } else {
        ""
    };
    let text = format!("{name}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    if let Ok(value) = HeaderValue::from_str(&text) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// Compares in time independent of where the texts differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn session_of(headers: &HeaderMap, state: &AppState) -> Result<AdminSession, AdminError> {
    let id = cookie(headers, SESSION_COOKIE).ok_or(AdminError::SignIn)?;
    let session = state
        .store
        .find_admin_session(&hash_refresh_token(&id))
        .await?
        .ok_or(AdminError::SignIn)?;
    crate::http::request_context::set_user(session.user.id);
    Ok(session)
}

/// A signed-in staff member or admin, their role read now. Anyone else: to the sign-in page
/// (no session) or 403 (a customer's session: the role changed since sign-in).
#[derive(Debug, Clone)]
pub struct Staff(pub AdminSession);

impl FromRequestParts<AppState> for Staff {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = session_of(&parts.headers, state).await?;
        if !session.user.role.can_write_catalogue() {
            return Err(ApiError::Forbidden.into());
        }
        Ok(Staff(session))
    }
}

/// A form posted by a signed-in staff member or admin with this session's CSRF token (as the
/// `_csrf` field or the `X-CSRF-Token` header); without it, 403.
pub struct StaffForm {
    pub session: AdminSession,
    pub fields: Vec<(String, String)>,
}

impl StaffForm {
    /// A field's value as sent; `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        field(&self.fields, name)
    }

    /// 403 unless the user is an admin now.
    pub fn require_admin(&self) -> Result<(), AdminError> {
        if self.session.user.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden.into())
        }
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map_or("", |(_, value)| value.as_str())
}

async fn read_form(request: Request, state: &AppState) -> Result<Vec<(String, String)>, AdminError> {
    let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::MalformedQuery
        }
    })?;
    serde_urlencoded::from_bytes(&bytes).map_err(|_| ApiError::MalformedQuery.into())
}

impl FromRequest<AppState> for StaffForm {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let Staff(session) = Staff::from_request_parts(&mut parts, state).await?;
        let header_token = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let fields = read_form(Request::from_parts(parts, body), state).await?;
        let sent = header_token.unwrap_or_else(|| field(&fields, "_csrf").to_owned());
        if !same_token(&sent, &session.csrf_token) {
            tracing::warn!(
                user_id = session.user.id,
                "console form without its CSRF token refused"
            );
            return Err(AdminError::Csrf);
        }
        Ok(StaffForm { session, fields })
    }
}

fn sign_in_page(
    state: &AppState,
    status: StatusCode,
    email: &str,
    error: &str,
) -> Result<Response, AdminError> {
    let (token, _) = random_token()?;
    let mut chrome = Chrome::anonymous();
    chrome.csrf = token.clone();
    let page = SignInPage {
        chrome,
        email: email.to_owned(),
        error: error.to_owned(),
    };
    let mut response = html(status, &page)?;
    set_cookie(&mut response, state, SIGN_IN_COOKIE, &token, 3600);
    Ok(response)
}

/// `GET /admin/sign-in`.
pub async fn sign_in_form(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AdminError> {
    if session_of(&headers, &state).await.is_ok() {
        return Ok(see_other("/admin/products"));
    }
    sign_in_page(&state, StatusCode::OK, "", "")
}

/// `POST /admin/sign-in`: the accounts service checks the password under the login throttle;
/// only staff and admins get a session.
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Result<Response, AdminError> {
    let headers = request.headers().clone();
    let fields = read_form(request, &state).await?;
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_token(field(&fields, "_csrf"), &expected) {
        return Err(AdminError::Csrf);
    }
    let email = field(&fields, "email");
    let password = Password::offered(field(&fields, "password").to_owned());
    let client = state.config.auth.trusted_proxies.client(peer.ip(), &headers);
    let user = match state.auth.verify_login(email, password, client).await {
        Ok(user) => user,
        Err(AuthError::InvalidCredentials) => {
            return sign_in_page(
                &state,
                StatusCode::UNAUTHORIZED,
                email,
                "Wrong email or password.",
            );
        }
        Err(AuthError::Throttled(wait)) => {
            let message = format!(
                "Too many failed attempts. Try again in {} seconds.",
                wait.as_secs().max(1)
            );
            return sign_in_page(&state, StatusCode::TOO_MANY_REQUESTS, email, &message);
        }
        Err(other) => return Err(other.into()),
    };
    if !user.role.can_write_catalogue() {
        return sign_in_page(
            &state,
            StatusCode::FORBIDDEN,
            email,
            "This console is for staff and admin accounts only.",
        );
    }
    let (id, id_hash) = random_token()?;
    let (csrf, _) = random_token()?;
    let expires_at = chrono::Utc::now() + SESSION_TTL;
    state
        .store
        .create_admin_session(&id_hash, user.id, &csrf, expires_at)
        .await?;
    tracing::info!(user_id = user.id, "console sign-in");
    let mut response = see_other("/admin/products");
    set_cookie(
        &mut response,
        &state,
        SESSION_COOKIE,
        &id,
        SESSION_TTL.num_seconds(),
    );
    set_cookie(&mut response, &state, SIGN_IN_COOKIE, "", 0);
    Ok(response)
}

/// `POST /admin/sign-out`: the session row is revoked, the cookie cleared.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: StaffForm,
) -> Result<Response, AdminError> {
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        state.store.revoke_admin_session(&hash_refresh_token(&id)).await?;
    }
    tracing::info!(user_id = form.session.user.id, "console sign-out");
    let mut response = see_other("/admin/sign-in");
    set_cookie(&mut response, &state, SESSION_COOKIE, "", 0);
    Ok(response)
}

/// A request whose body is not a form (an import's file), from a signed-in staff member or
/// admin with this session's CSRF token in the `X-CSRF-Token` header; without it, 403. The body
/// is left unread for the handler.
pub struct StaffUpload(pub AdminSession);

impl FromRequestParts<AppState> for StaffUpload {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Staff(session) = Staff::from_request_parts(parts, state).await?;
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !same_token(sent, &session.csrf_token) {
            tracing::warn!(
                user_id = session.user.id,
                "console upload without its CSRF token refused"
            );
            return Err(AdminError::Csrf);
        }
        Ok(StaffUpload(session))
    }
}
