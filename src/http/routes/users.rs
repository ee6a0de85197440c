//! `/api/v1/users`: admins manage accounts.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use tracing::instrument;

use crate::http::caller::RequireAdmin;
use crate::http::dto::user::{UserResponse, parse_user_change};
use crate::http::error::ApiError;
use crate::http::extract::ResourceId;
use crate::http::json_body::JsonObject;
use crate::http::pagination::{PageBody, parse_offset_query};
use crate::state::AppState;

/// An offset page of users.
pub type UserPage = PageBody<UserResponse>;

/// List users (admin).
///
/// Offset pages (`page`, `per_page`) of every account, in id order. Admin only.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    extensions(("x-problems" = json!([400,401,403]))),
    params(crate::http::openapi::PageParams),
    responses((status = 200, description = "Users by id", body = UserPage)),
    security(("bearer" = [])))]
#[instrument(skip_all)]
pub async fn list_users(
    _admin: RequireAdmin,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let page = parse_offset_query(query.as_deref())?;
    let (users, total) = state.store.list_users(page.per_page, page.offset()).await?;
    let body = UserPage::new(users.into_iter().map(UserResponse::from).collect(), page, total);
    Ok(body.answer("/api/v1/users"))
}

/// Change the role or status of a user (admin).
///
/// Sets `role` and/or `disabled`. Demoting or disabling the last enabled admin is 409
/// `/problems/last-admin`. Admin only.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users",
    extensions(("x-problems" = json!([400,401,403,404,409,413,415,422]))),
    request_body = crate::http::openapi::schemas::UserPatchRequest,
    params(("id" = i64, Path, description = "The user id", minimum = 1)),
    responses((status = 200, description = "The user", body = UserResponse)),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(target_user = id.0))]
pub async fn update_user(
    RequireAdmin(admin): RequireAdmin,
    State(state): State<AppState>,
    id: ResourceId,
    body: JsonObject,
) -> Result<Json<UserResponse>, ApiError> {
    let change = parse_user_change(body)?;
    let user = state.store.update_user(id.0, &change).await?;
    tracing::info!(
        admin_id = admin.id,
        user_id = user.id,
        role = user.role.as_str(),
        disabled = user.disabled,
        "user changed by an admin"
    );
    Ok(Json(UserResponse::from(user)))
}
