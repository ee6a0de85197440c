//! Users and tokens as JSON.

use serde::Serialize;

use crate::domain::user::{Email, Password, Role, User, UserChange};
use crate::http::dto::product::rfc3339;
use crate::http::error::{ApiError, FieldErrors};
use crate::http::json_body::{Fields, JsonObject, decode};
use crate::services::accounts::TokenPair;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 2, "email": "ana@example.com", "role": "customer", "disabled": false, "created_at": "2026-11-29T10:00:00Z"}))]
pub struct UserResponse {
    pub id: i64,
    pub email: String,
    #[schema(value_type = String, pattern = "^(admin|staff|customer)$")]
    pub role: &'static str,
    pub disabled: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl crate::http::pagination::PageItem for UserResponse {
    const PAGE_NAME: &'static str = "UserPage";
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        UserResponse {
            id: user.id,
            email: user.email.as_str().to_owned(),
            role: user.role.as_str(),
            disabled: user.disabled,
            created_at: rfc3339(user.created_at),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIyIn0.c2lnbmF0dXJl", "token_type": "Bearer", "expires_in": 900, "refresh_token": "kP3vQ0mZl2N9xYtR7wEaB1cD4fG6hJ8kL0mN2pQ4rS6"}))]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(value_type = String, pattern = "^Bearer$")]
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        TokenResponse {
            access_token: pair.access_token,
            token_type: "Bearer",
            expires_in: pair.expires_in,
            refresh_token: pair.refresh_token,
        }
    }
}

/// `{"email", "password"}` for registration: a valid email and a new password; nothing else
/// (a `role` is an unknown field).
pub fn parse_registration(body: JsonObject) -> Result<(Email, Password), ApiError> {
    let mut fields = Fields::new(body);
    let email = fields.required("email", |raw| Email::parse(&decode::string(raw)?));
    let password = fields.required("password", |raw| Password::new_password(decode::string(raw)?));
    fields.finish(&["id", "role", "disabled", "created_at"])?;
    match (email, password) {
        (Some(email), Some(password)) => Ok((email, password)),
        _ => Err(ApiError::Validation(FieldErrors::default())),
    }
}

/// `{"email", "password"}` for login: any strings; they are only compared. A password holding
/// NUL is a 422 like in every text field; the email is left to the login's own rule (API.md: a
/// malformed login email gets the same 401 as a wrong password).
pub fn parse_login(body: JsonObject) -> Result<(String, Password), ApiError> {
    let mut fields = Fields::new(body);
    let email = fields.required("email", decode::string_with_nul);
    let password = fields.required("password", |raw| decode::string(raw).map(Password::offered));
    fields.finish(&[])?;
    match (email, password) {
        (Some(email), Some(password)) => Ok((email, password)),
        _ => Err(ApiError::Validation(FieldErrors::default())),
    }
}

/// `{"refresh_token"}`.
pub fn parse_refresh(body: JsonObject) -> Result<String, ApiError> {
    let mut fields = Fields::new(body);
    let token = fields.required("refresh_token", decode::string);
    fields.finish(&[])?;
    token.ok_or_else(|| ApiError::Validation(FieldErrors::default()))
}

/// `{"role"?, "disabled"?}` from an admin.
pub fn parse_user_change(body: JsonObject) -> Result<UserChange, ApiError> {
    let mut fields = Fields::new(body);
    let change = UserChange {
        role: fields.optional("role", |raw| decode::string(raw)?.parse::<Role>()),
        disabled: fields.optional("disabled", decode::boolean),
    };
    fields.finish(&["id", "email", "created_at"])?;
    Ok(change)
}
