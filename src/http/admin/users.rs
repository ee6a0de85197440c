//! The console's user page (admins only): roles and disabling, through the API's parser and
//! store call (so the last-admin rule and the revocation of a disabled user's tokens and
//! console sessions hold here too).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::form::{explain, json_object, messages, text};
use super::page::{AdminError, html, see_other};
use super::session::{Staff, StaffForm};
use super::views::{Chrome, UserLine, UsersPage};
use crate::domain::user::Role;
use crate::http::dto::user::parse_user_change;
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::admin_sessions::AdminSession;

/// Accounts shown on the page.
const SHOWN: u64 = 200;

async fn users_page(
    state: &AppState,
    session: &AdminSession,
    status: StatusCode,
    notice: &str,
    error: String,
) -> Result<Response, AdminError> {
    let (users, total) = state.store.list_users(SHOWN, 0).await?;
    let page = UsersPage {
        chrome: Chrome::for_session(session, "users"),
        users: users
            .into_iter()
            .map(|u| UserLine {
                id: u.id,
                email: u.email.as_str().to_owned(),
                role: u.role.as_str(),
                disabled: u.disabled,
                created: u.created_at.format("%Y-%m-%d").to_string(),
                is_me: u.id == session.user.id,
            })
            .collect(),
        roles: [
            Role::Customer.as_str(),
            Role::Staff.as_str(),
            Role::Admin.as_str(),
        ],
        notice: notice.to_owned(),
        error,
        more: total > SHOWN,
    };
    html(status, &page)
}

/// `GET /admin/users`.
pub async fn list(
    Staff(session): Staff,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    if session.user.role != Role::Admin {
        return Err(ApiError::Forbidden.into());
    }
    let notice = if query.as_deref() == Some("changed=1") {
        "Saved."
    } else {
        ""
    };
    users_page(&state, &session, StatusCode::OK, notice, String::new()).await
}

/// `POST /admin/users/{id}`: a role and a status.
pub async fn change(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm,
) -> Result<Response, AdminError> {
    form.require_admin()?;
    let id = id
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(AdminError::Api(ApiError::NotFound))?;
    let disabled = match form.get("status") {
        "active" => Value::Bool(false),
        "disabled" => Value::Bool(true),
        other => text(other),
    };
    let body = json_object(vec![("role", text(form.get("role"))), ("disabled", disabled)])?;
    let change = match parse_user_change(body) {
        Ok(change) => change,
        Err(ApiError::Validation(errors)) => {
            let (by_field, other) = messages(&errors, &[]);
            let mut lines: Vec<String> = by_field.into_iter().map(|(f, m)| format!("{f}: {m}")).collect();
            lines.push(other);
            let error = lines.join(" ");
            return users_page(&state, &form.session, StatusCode::UNPROCESSABLE_ENTITY, "", error).await;
        }
        Err(other) => return Err(other.into()),
    };
    match state.store.update_user(id, &change).await {
        Ok(user) => {
            tracing::info!(
                admin_id = form.session.user.id,
                user_id = user.id,
                role = user.role.as_str(),
                disabled = user.disabled,
                "user changed by an admin in the console"
            );
            Ok(see_other("/admin/users?changed=1"))
        }
        Err(StoreError::Conflict(kind)) => {
            let error = explain(ApiError::Conflict(kind));
            users_page(&state, &form.session, StatusCode::CONFLICT, "", error).await
        }
        Err(other) => Err(other.into()),
    }
}
