//! Users and tokens as JSON.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::Serialize;

use crate::domain::product::Invalid;
use crate::domain::user::{Email, Password, Role, User, UserChange};
use crate::http::dto::product::rfc3339;
use crate::http::error::{ApiError, FieldError, FieldErrors};
use crate::http::json_body::{Fields, JsonObject, decode, read_body};
use crate::services::accounts::TokenPair;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 2, "email": "ana@example.com", "role": "customer", "disabled": false, "created_at": "2026-11-29T10:00:00Z"}))]
pub struct UserResponse {
    pub id: i64,
    pub email: String,
    #[schema(value_type = crate::http::openapi::schemas::RoleName)]
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

/// A login body: JSON `{"email", "password"}` (the contract), or the OAuth 2.0 password grant
/// (RFC 6749 §4.3) as a form, `grant_type=password&username=...&password=...`, which is what
/// Swagger UI's Authorize dialog sends, so `/docs` can log in without pasting a token. Both get
/// the same answers.
pub enum LoginBody {
    Json(JsonObject),
    Form(Bytes),
}

const FORM: &str = "application/x-www-form-urlencoded";

impl<S: Send + Sync> FromRequest<S> for LoginBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(FORM));
        if !form {
            return JsonObject::from_request(request, state)
                .await
                .map(LoginBody::Json);
        }
        Ok(LoginBody::Form(read_body(request, state).await?))
    }
}

/// `{"email", "password"}` for login: any strings; they are only compared. A password holding
/// NUL is a 422 like in every text field; the email is left to the login's own rule (API.md: a
/// malformed login email gets the same 401 as a wrong password).
pub fn parse_login(body: LoginBody) -> Result<(String, Password), ApiError> {
    let body = match body {
        LoginBody::Json(body) => body,
        LoginBody::Form(bytes) => return parse_password_grant(&bytes),
    };
    let mut fields = Fields::new(body);
    let email = fields.required("email", decode::string_with_nul);
    let password = fields.required("password", |raw| decode::string(raw).map(Password::offered));
    fields.finish(&[])?;
    match (email, password) {
        (Some(email), Some(password)) => Ok((email, password)),
        _ => Err(ApiError::Validation(FieldErrors::default())),
    }
}

/// The password grant's form: `grant_type=password`, the email as `username`, `password`.
/// `scope` and client credentials, which OAuth clients may add, are ignored: there are neither
/// scopes nor registered clients.
fn parse_password_grant(bytes: &[u8]) -> Result<(String, Password), ApiError> {
    let invalid = |field: &str, code: &'static str, message: &str| {
        ApiError::Validation(vec![FieldError::new(field, Invalid::new(code, message))].into())
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes)
        .map_err(|_| invalid("body", "invalid_form", "is not a valid form"))?;
    let mut errors = FieldErrors::default();
    let mut value = |name: &str| {
        let mut found = pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, v)| v.clone());
        match (found.next(), found.next()) {
            (Some(value), None) => Some(value),
            (None, _) => {
                errors.push(FieldError::new(name, Invalid::new("required", "is required")));
                None
            }
            (Some(_), Some(_)) => {
                errors.push(FieldError::new(
                    name,
                    Invalid::new("repeated", "may be given only once"),
                ));
                None
            }
        }
    };
    let grant = value("grant_type");
    let email = value("username");
    let password = value("password");
    if grant.as_deref().is_some_and(|grant| grant != "password") {
        errors.push(FieldError::new(
            "grant_type",
            Invalid::new("unsupported_grant_type", "only the password grant is supported"),
        ));
    }
    if password.as_deref().is_some_and(|p| p.contains('\0')) {
        errors.push(FieldError::new(
            "password",
            Invalid::new("invalid_character", "must not contain NUL"),
        ));
    }
    match (grant, email, password) {
        (Some(_), Some(email), Some(password)) if errors.total() == 0 => {
            Ok((email, Password::offered(password)))
        }
        _ => Err(ApiError::Validation(errors)),
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
