//! `/api/v1/webhooks`: admins manage webhook endpoints and read their delivery log.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::instrument;

use crate::domain::product::Invalid;
use crate::domain::webhook::WebhookUrl;
use crate::http::caller::RequireAdmin;
use crate::http::dto::webhook::{
    DeliveryResponse, SecretResponse, WebhookCreatedResponse, WebhookResponse, parse_webhook_change,
    parse_webhook_draft,
};
use crate::http::error::{ApiError, FieldError};
use crate::http::extract::{ResourceId, ResourceIds};
use crate::http::json_body::JsonObject;
use crate::http::pagination::{PageBody, parse_offset_query};
use crate::state::AppState;
use crate::webhooks::{ROTATION_OVERLAP, signature, target};

const WEBHOOKS_PATH: &str = "/api/v1/webhooks";

/// An offset page of endpoints.
pub type WebhookPage = PageBody<WebhookResponse>;
/// An offset page of deliveries.
pub type DeliveryPage = PageBody<DeliveryResponse>;

/// (Also the console's.) Refuses a target the delivery side would refuse: `https` in production, no loopback,
/// private, link-local or reserved address (unless `TIENDA_WEBHOOK_ALLOW_PRIVATE`).
pub async fn check_target(state: &AppState, url: &WebhookUrl) -> Result<(), ApiError> {
    target::check(url.url(), &state.config.webhooks)
        .await
        .map_err(|refusal| {
            ApiError::Validation(
                vec![FieldError::new(
                    "url",
                    Invalid::new(refusal.code, refusal.message),
                )]
                .into(),
            )
        })
}

pub fn new_secret() -> Result<String, ApiError> {
    signature::new_secret().map_err(|e| ApiError::Internal(anyhow::anyhow!("cannot draw a secret: {e}")))
}

/// Create a webhook endpoint (admin).
///
/// Subscribes `url` to `events`. Answers 201 with the endpoint and its signing `secret`, shown
/// only here. A target whose host resolves to a loopback, private, link-local or reserved
/// address is 422 (unless the server allows private targets); in production it must be
/// `https`. Deliveries are signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`). Admin only.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks",
    extensions(("x-problems" = json!([400,401,403,413,415,422]))),
    request_body = crate::http::openapi::schemas::WebhookCreateRequest,
    responses((status = 201, description = "Created, with its secret", body = WebhookCreatedResponse)),
    security(("bearer" = [])))]
#[instrument(skip_all)]
pub async fn create_webhook(
    RequireAdmin(admin): RequireAdmin,
    State(state): State<AppState>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let draft = parse_webhook_draft(body)?;
    check_target(&state, &draft.url).await?;
    let secret = new_secret()?;
    let webhook = state.store.create_webhook(&draft, &secret).await?;
    tracing::info!(
        admin_id = admin.id,
        webhook_id = webhook.id,
        "webhook endpoint created"
    );
    let location = HeaderValue::from_str(&format!("{WEBHOOKS_PATH}/{}", webhook.id));
    let body = WebhookCreatedResponse {
        webhook: WebhookResponse::from(webhook),
        secret,
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// List webhook endpoints (admin).
///
/// Offset pages (`page`, `per_page`) of every endpoint, in id order. Admin only.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    extensions(("x-problems" = json!([400,401,403]))),
    params(crate::http::openapi::PageParams),
    responses((status = 200, description = "Endpoints by id", body = WebhookPage)),
    security(("bearer" = [])))]
#[instrument(skip_all)]
pub async fn list_webhooks(
    _admin: RequireAdmin,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let page = parse_offset_query(query.as_deref())?;
    let (items, total) = state.store.list_webhooks(page.per_page, page.offset()).await?;
    let body = WebhookPage::new(
        items.into_iter().map(WebhookResponse::from).collect(),
        page,
        total,
    );
    Ok(body.answer(WEBHOOKS_PATH))
}

/// Read a webhook endpoint (admin).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    extensions(("x-problems" = json!([401,403,404]))),
    params(("id" = i64, Path, description = "The endpoint id", minimum = 1)),
    responses((status = 200, description = "The endpoint", body = WebhookResponse)),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(webhook_id = id.0))]
pub async fn get_webhook(
    _admin: RequireAdmin,
    State(state): State<AppState>,
    id: ResourceId,
) -> Result<Json<WebhookResponse>, ApiError> {
    Ok(Json(WebhookResponse::from(state.store.get_webhook(id.0).await?)))
}

/// Change a webhook endpoint (admin).
///
/// JSON merge patch of `url`, `events`, `description` and `disabled`. A new `url` is checked
/// as at creation. `{"disabled": false}` resumes an endpoint disabled for failing. Admin only.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    extensions(("x-problems" = json!([400,401,403,404,413,415,422]))),
    request_body = crate::http::openapi::schemas::WebhookPatchRequest,
    params(("id" = i64, Path, description = "The endpoint id", minimum = 1)),
    responses((status = 200, description = "The endpoint", body = WebhookResponse)),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(webhook_id = id.0))]
pub async fn update_webhook(
    RequireAdmin(admin): RequireAdmin,
    State(state): State<AppState>,
    id: ResourceId,
    body: JsonObject,
) -> Result<Json<WebhookResponse>, ApiError> {
    let change = parse_webhook_change(body)?;
    if let Some(url) = &change.url {
        check_target(&state, url).await?;
    }
    let webhook = state.store.update_webhook(id.0, &change).await?;
    tracing::info!(
        admin_id = admin.id,
        webhook_id = webhook.id,
        "webhook endpoint changed"
    );
    Ok(Json(WebhookResponse::from(webhook)))
}

/// Delete a webhook endpoint (admin).
///
/// Its pending deliveries are dropped with it. Admin only.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    extensions(("x-problems" = json!([401,403,404]))),
    params(("id" = i64, Path, description = "The endpoint id", minimum = 1)),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(webhook_id = id.0))]
pub async fn delete_webhook(
    RequireAdmin(admin): RequireAdmin,
    State(state): State<AppState>,
    id: ResourceId,
) -> Result<StatusCode, ApiError> {
    state.store.delete_webhook(id.0).await?;
    tracing::info!(admin_id = admin.id, webhook_id = id.0, "webhook endpoint deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate the signing secret of a webhook endpoint (admin).
///
/// Answers the new secret. For 24 h the previous one signs too: each delivery carries both
/// signatures, space-separated, so a receiver can switch without missing one. Admin only.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    extensions(("x-problems" = json!([401,403,404]))),
    params(("id" = i64, Path, description = "The endpoint id", minimum = 1)),
    responses((status = 200, description = "The new secret", body = SecretResponse)),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(webhook_id = id.0))]
pub async fn rotate_webhook_secret(
    RequireAdmin(admin): RequireAdmin,
    State(state): State<AppState>,
    id: ResourceId,
) -> Result<Json<SecretResponse>, ApiError> {
    let secret = new_secret()?;
    state
        .store
        .rotate_webhook_secret(id.0, &secret, ROTATION_OVERLAP)
        .await?;
    tracing::info!(admin_id = admin.id, webhook_id = id.0, "webhook secret rotated");
    Ok(Json(SecretResponse { secret }))
}

/// List the deliveries of a webhook endpoint (admin).
///
/// Offset pages (`page`, `per_page`), newest first: the event, its status (`pending`,
/// `delivered`, `dead`), attempts, the last status code and the next attempt. Admin only.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    extensions(("x-problems" = json!([400,401,403,404]))),
    params(("id" = i64, Path, description = "The endpoint id", minimum = 1), crate::http::openapi::PageParams),
    responses((status = 200, description = "Deliveries, newest first", body = DeliveryPage)),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(webhook_id = id.0))]
pub async fn list_deliveries(
    _admin: RequireAdmin,
    State(state): State<AppState>,
    id: ResourceId,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let page = parse_offset_query(query.as_deref())?;
    let (items, total) = state
        .store
        .list_deliveries(id.0, page.per_page, page.offset())
        .await?;
    let body = DeliveryPage::new(
        items.into_iter().map(DeliveryResponse::from).collect(),
        page,
        total,
    );
    Ok(body.answer(&format!("{WEBHOOKS_PATH}/{}/deliveries", id.0)))
}

/// Retry a delivery now (admin).
///
/// Makes the delivery due at once: one more attempt for a `dead` one, a resend of a
/// `delivered` one, no more waiting for a `pending` one. Answers 202 with the delivery.
/// Admin only.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    extensions(("x-problems" = json!([401,403,404]))),
    params(("id" = i64, Path, description = "The endpoint id", minimum = 1),
           ("delivery_id" = i64, Path, description = "The delivery id", minimum = 1)),
    responses((status = 202, description = "Due now", body = DeliveryResponse)),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(webhook_id = ids.0, delivery_id = ids.1))]
pub async fn retry_delivery(
    RequireAdmin(admin): RequireAdmin,
    State(state): State<AppState>,
    ids: ResourceIds,
) -> Result<Response, ApiError> {
    let delivery = state.store.retry_delivery(ids.0, ids.1).await?;
    tracing::info!(
        admin_id = admin.id,
        webhook_id = ids.0,
        delivery_id = ids.1,
        "webhook delivery retried"
    );
    Ok((StatusCode::ACCEPTED, Json(DeliveryResponse::from(delivery))).into_response())
}
