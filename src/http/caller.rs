//! Who is calling: bearer-token extractors. A handler's signature says who may call it.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::domain::user::{Role, User};
use crate::state::AppState;

/// Any authenticated, enabled user.
#[derive(Debug, Clone)]
pub struct AuthUser(pub User);

/// Staff or admin: may write products and stock.
#[derive(Debug, Clone)]
pub struct RequireStaff(pub User);

/// Admin only: may manage users.
#[derive(Debug, Clone)]
pub struct RequireAdmin(pub User);

/// Product reads: public unless `TIENDA_PROTECT_READS` is on, then any valid token.
#[derive(Debug, Clone)]
pub struct ReadAccess;

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthenticated)?;
    let value = value.to_str().map_err(|_| ApiError::InvalidToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::InvalidToken)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::InvalidToken);
    }
    Ok(token)
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let token = bearer(parts)?;
        let user = state.auth.authenticate(token).await?;
        crate::http::request_context::set_user(user.id);
        parts.extensions.insert(AuthUser(user.clone()));
        Ok(AuthUser(user))
    }
}

fn require(user: User, allowed: impl Fn(Role) -> bool) -> Result<User, ApiError> {
    if allowed(user.role) {
        Ok(user)
    } else {
        Err(ApiError::Forbidden)
    }
}

impl FromRequestParts<AppState> for RequireStaff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let AuthUser(user) = AuthUser::from_request_parts(parts, state).await?;
        require(user, Role::can_write_catalogue).map(RequireStaff)
    }
}

impl FromRequestParts<AppState> for RequireAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let AuthUser(user) = AuthUser::from_request_parts(parts, state).await?;
        require(user, |role| role == Role::Admin).map(RequireAdmin)
    }
}

impl FromRequestParts<AppState> for ReadAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if state.config.auth.protect_reads {
            AuthUser::from_request_parts(parts, state).await?;
        }
        Ok(ReadAccess)
    }
}
