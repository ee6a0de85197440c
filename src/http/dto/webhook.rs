//! Webhook endpoints and their deliveries as JSON.

use serde::Serialize;

use crate::domain::product::Invalid;
use crate::domain::webhook::{
    Delivery, Webhook, WebhookChange, WebhookDraft, WebhookUrl, parse_description, parse_events,
};
use crate::http::dto::product::rfc3339;
use crate::http::error::{ApiError, FieldErrors};
use crate::http::json_body::{Fields, JsonObject, decode};

const READ_ONLY: &[&str] = &["id", "secret", "created_at", "updated_at"];

fn url(raw: &serde_json::value::RawValue) -> Result<WebhookUrl, Invalid> {
    WebhookUrl::parse(&decode::string(raw)?)
}

fn events(raw: &serde_json::value::RawValue) -> Result<Vec<crate::domain::webhook::EventType>, Invalid> {
    let names: Vec<String> = serde_json::from_str(raw.get())
        .map_err(|_| Invalid::new("invalid_type", "must be an array of event names"))?;
    parse_events(&names)
}

fn description(raw: &serde_json::value::RawValue) -> Result<String, Invalid> {
    parse_description(&decode::string(raw)?)
}

/// `{"url", "events", "description"?}`.
pub fn parse_webhook_draft(body: JsonObject) -> Result<WebhookDraft, ApiError> {
    let mut fields = Fields::new(body);
    let url = fields.required("url", url);
    let events = fields.required("events", events);
    let description = fields.nullable("description", description);
    fields.finish(&[READ_ONLY, &["disabled"]].concat())?;
    match (url, events) {
        (Some(url), Some(events)) => Ok(WebhookDraft {
            url,
            events,
            description: description.flatten(),
        }),
        _ => Err(ApiError::Validation(FieldErrors::default())),
    }
}

/// `{"url"?, "events"?, "description"?, "disabled"?}` (merge patch).
pub fn parse_webhook_change(body: JsonObject) -> Result<WebhookChange, ApiError> {
    let mut fields = Fields::new(body);
    let change = WebhookChange {
        url: fields.optional("url", url),
        events: fields.optional("events", events),
        description: fields.nullable("description", description),
        disabled: fields.optional("disabled", decode::boolean),
    };
    fields.finish(READ_ONLY)?;
    Ok(change)
}

/// An endpoint (its secret is never shown again after creation or rotation).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 3, "url": "https://example.com/hooks/tienda", "events": ["product.created", "stock.adjusted"], "description": "search index", "disabled": false, "created_at": "2026-11-29T10:00:00Z", "updated_at": "2026-11-29T10:00:00Z"}))]
pub struct WebhookResponse {
    pub id: i64,
    pub url: String,
    /// The event types sent to it.
    #[schema(value_type = Vec<crate::http::openapi::schemas::WebhookEventName>)]
    pub events: Vec<&'static str>,
    pub description: Option<String>,
    /// No delivery is attempted while true (set by an admin, or automatically after failing
    /// for a long stretch).
    pub disabled: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl crate::http::pagination::PageItem for WebhookResponse {
    const PAGE_NAME: &'static str = "WebhookPage";
}

impl From<Webhook> for WebhookResponse {
    fn from(webhook: Webhook) -> Self {
        WebhookResponse {
            id: webhook.id,
            url: webhook.url,
            events: webhook.events.iter().map(|e| e.as_str()).collect(),
            description: webhook.description,
            disabled: webhook.disabled,
            created_at: rfc3339(webhook.created_at),
            updated_at: rfc3339(webhook.updated_at),
        }
    }
}

/// A new endpoint with its signing secret, shown only this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 3, "url": "https://example.com/hooks/tienda", "events": ["product.created"], "description": null, "disabled": false, "created_at": "2026-11-29T10:00:00Z", "updated_at": "2026-11-29T10:00:00Z", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}))]
pub struct WebhookCreatedResponse {
    #[serde(flatten)]
    pub webhook: WebhookResponse,
    /// `whsec_` + base64 of 32 random bytes: the HMAC key of `webhook-signature`.
    pub secret: String,
}

/// A new signing secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}))]
pub struct SecretResponse {
    /// The new secret; the previous one keeps signing for 24 h (both signatures are sent).
    pub secret: String,
}

/// One event's delivery to an endpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 12, "event_id": "evt_0193a1b2c3d4e5f6a7b8c9d0e1f2a3b4", "event_type": "product.updated", "status": "pending", "attempts": 2, "last_status": 503, "last_error": "answered 503", "next_attempt_at": "2026-11-29T10:06:30Z", "created_at": "2026-11-29T10:05:00Z", "updated_at": "2026-11-29T10:05:02Z"}))]
pub struct DeliveryResponse {
    pub id: i64,
    /// The event's id: the `webhook-id` header of every attempt.
    pub event_id: String,
    #[schema(value_type = crate::http::openapi::schemas::WebhookEventName)]
    pub event_type: String,
    #[schema(value_type = crate::http::openapi::schemas::DeliveryStatusName)]
    pub status: &'static str,
    /// Attempts made so far.
    pub attempts: i64,
    /// The HTTP status of the last attempt, when it got an answer.
    pub last_status: Option<i64>,
    /// Why the last attempt failed, when it did.
    pub last_error: Option<String>,
    /// When the next attempt is due; null unless pending.
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl crate::http::pagination::PageItem for DeliveryResponse {
    const PAGE_NAME: &'static str = "DeliveryPage";
}

impl From<Delivery> for DeliveryResponse {
    fn from(delivery: Delivery) -> Self {
        DeliveryResponse {
            id: delivery.id,
            event_id: delivery.event_id,
            event_type: delivery.event_type,
            status: delivery.status.as_str(),
            attempts: delivery.attempts,
            last_status: delivery.last_status,
            last_error: delivery.last_error,
            next_attempt_at: delivery.next_attempt_at.map(rfc3339),
            created_at: rfc3339(delivery.created_at),
            updated_at: rfc3339(delivery.updated_at),
        }
    }
}
