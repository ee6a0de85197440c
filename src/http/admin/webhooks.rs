//! The console's webhook pages (admins only): endpoints, their events, disabling, the secret
//! (shown once, at creation and after a rotation) and the delivery log with retry. The forms
//! become the API's JSON bodies for its parsers; the target check, the secret and the store
//! calls are the API handlers' own.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::form::{json_object, optional_text, text};
use super::page::{AdminError, html, see_other};
use super::session::{Staff, StaffForm};
use super::views::{Chrome, DeliveryLine, EventChoice, WebhookLine, WebhookPage, WebhooksPage};
use crate::domain::user::Role;
use crate::domain::webhook::{EventType, Webhook};
use crate::http::dto::webhook::{parse_webhook_change, parse_webhook_draft};
use crate::http::error::ApiError;
use crate::http::routes::webhooks::{check_target, new_secret};
use crate::state::AppState;
use crate::store::admin_sessions::AdminSession;
use crate::webhooks::ROTATION_OVERLAP;

/// Endpoints and deliveries shown on a page.
const SHOWN: u64 = 100;

fn require_admin(session: &AdminSession) -> Result<(), AdminError> {
    if session.user.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden.into())
    }
}

fn id_of(raw: &str) -> Result<i64, AdminError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(AdminError::Api(ApiError::NotFound))
}

fn choices(selected: &[&str]) -> Vec<EventChoice> {
    EventType::ALL
        .iter()
        .map(|e| EventChoice {
            name: e.as_str(),
            checked: selected.contains(&e.as_str()),
        })
        .collect()
}

/// The ticked `events` boxes of a form, as the API's `events` array.
fn events(form: &StaffForm) -> Value {
    Value::Array(
        form.fields
            .iter()
            .filter(|(k, _)| k == "events")
            .map(|(_, v)| text(v))
            .collect(),
    )
}

fn errors_of(error: ApiError) -> Result<Vec<String>, AdminError> {
    match error {
        ApiError::Validation(errors) => Ok(errors
            .listed()
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect()),
        other => Err(other.into()),
    }
}

async fn list_page(
    state: &AppState,
    session: &AdminSession,
    status: StatusCode,
    errors: Vec<String>,
    url: &str,
) -> Result<Response, AdminError> {
    let (endpoints, _) = state.store.list_webhooks(SHOWN, 0).await?;
    let page = WebhooksPage {
        chrome: Chrome::for_session(session, "webhooks"),
        endpoints: endpoints
            .into_iter()
            .map(|w| WebhookLine {
                id: w.id,
                url: w.url.clone(),
                events: w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "),
                disabled: w.disabled,
            })
            .collect(),
        events: choices(&[]),
        errors,
        url: url.to_owned(),
    };
    html(status, &page)
}

async fn endpoint_page(
    state: &AppState,
    session: &AdminSession,
    webhook: Webhook,
    secret: String,
    notice: &str,
) -> Result<Response, AdminError> {
    let (deliveries, _) = state.store.list_deliveries(webhook.id, SHOWN, 0).await?;
    let selected: Vec<&str> = webhook.events.iter().map(|e| e.as_str()).collect();
    let page = WebhookPage {
        chrome: Chrome::for_session(session, "webhooks"),
        id: webhook.id,
        url: webhook.url.clone(),
        disabled: webhook.disabled,
        events: choices(&selected),
        secret,
        notice: notice.to_owned(),
        deliveries: deliveries
            .into_iter()
            .map(|d| DeliveryLine {
                id: d.id,
                event_type: d.event_type.clone(),
                status: d.status.as_str(),
                attempts: d.attempts,
                last_status: d.last_status.map(|s| s.to_string()).unwrap_or_default(),
                last_error: d.last_error.clone().unwrap_or_default(),
                created: d.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            })
            .collect(),
    };
    html(StatusCode::OK, &page)
}

/// `GET /admin/webhooks`.
pub async fn list(Staff(session): Staff, State(state): State<AppState>) -> Result<Response, AdminError> {
    require_admin(&session)?;
    list_page(&state, &session, StatusCode::OK, Vec::new(), "").await
}

/// `POST /admin/webhooks`: created, its page shows the secret this once.
pub async fn create(State(state): State<AppState>, form: StaffForm) -> Result<Response, AdminError> {
    form.require_admin()?;
    let body = json_object(vec![
        ("url", text(form.get("url"))),
        ("events", events(&form)),
        ("description", optional_text(form.get("description"))),
    ])?;
    let checked = match parse_webhook_draft(body) {
        Ok(draft) => check_target(&state, &draft.url).await.map(|()| draft),
        Err(error) => Err(error),
    };
    let draft = match checked {
        Ok(draft) => draft,
        Err(error) => {
            let errors = errors_of(error)?;
            return list_page(
                &state,
                &form.session,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
                form.get("url"),
            )
            .await;
        }
    };
    let secret = new_secret()?;
    let webhook = state.store.create_webhook(&draft, &secret).await?;
    tracing::info!(
        admin_id = form.session.user.id,
        webhook_id = webhook.id,
        "webhook endpoint created in the console"
    );
    endpoint_page(&state, &form.session, webhook, secret, "Endpoint created.").await
}

/// `GET /admin/webhooks/{id}`.
pub async fn show(
    Staff(session): Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    require_admin(&session)?;
    let webhook = state.store.get_webhook(id_of(&id)?).await?;
    endpoint_page(&state, &session, webhook, String::new(), "").await
}

/// `POST /admin/webhooks/{id}`: its events and whether it is disabled.
pub async fn change(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm,
) -> Result<Response, AdminError> {
    form.require_admin()?;
    let id = id_of(&id)?;
    let disabled = match form.get("status") {
        "disabled" => Value::Bool(true),
        _ => Value::Bool(false),
    };
    let body = json_object(vec![("events", events(&form)), ("disabled", disabled)])?;
    let change = parse_webhook_change(body)?;
    state.store.update_webhook(id, &change).await?;
    tracing::info!(
        admin_id = form.session.user.id,
        webhook_id = id,
        "webhook endpoint changed in the console"
    );
    Ok(see_other(&format!("/admin/webhooks/{id}")))
}

/// `POST /admin/webhooks/{id}/rotate`: the new secret, shown this once.
pub async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm,
) -> Result<Response, AdminError> {
    form.require_admin()?;
    let id = id_of(&id)?;
    let secret = new_secret()?;
    state
        .store
        .rotate_webhook_secret(id, &secret, ROTATION_OVERLAP)
        .await?;
    tracing::info!(
        admin_id = form.session.user.id,
        webhook_id = id,
        "webhook secret rotated in the console"
    );
    let webhook = state.store.get_webhook(id).await?;
    endpoint_page(
        &state,
        &form.session,
        webhook,
        secret,
        "Secret rotated: the previous one also signs for 24 hours.",
    )
    .await
}

/// `POST /admin/webhooks/{id}/deliveries/{delivery}/retry`.
pub async fn retry(
    State(state): State<AppState>,
    Path((id, delivery)): Path<(String, String)>,
    form: StaffForm,
) -> Result<Response, AdminError> {
    form.require_admin()?;
    let (id, delivery) = (id_of(&id)?, id_of(&delivery)?);
    state.store.retry_delivery(id, delivery).await?;
    tracing::info!(
        admin_id = form.session.user.id,
        webhook_id = id,
        delivery_id = delivery,
        "webhook delivery retried in the console"
    );
    Ok(see_other(&format!("/admin/webhooks/{id}")))
}
