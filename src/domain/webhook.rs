//! Webhook endpoints: the events a shop can subscribe to, and the rules of an endpoint's fields.

use chrono::{DateTime, Utc};

use super::product::Invalid;

/// The longest URL an endpoint may have, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// The longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// A kind of event a webhook endpoint can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A product was created (POST, import).
    ProductCreated,
    /// A product was changed (PUT, PATCH, import).
    ProductUpdated,
    /// A product was deleted; the event carries it as it was.
    ProductDeleted,
    /// A stock adjustment was applied; the event carries the ledger entry.
    StockAdjusted,
    /// An import job finished.
    ImportFinished,
    /// An export job finished.
    ExportFinished,
}

impl EventType {
    /// Every event type, in the order the API lists them.
    pub const ALL: [EventType; 6] = [
        EventType::ProductCreated,
        EventType::ProductUpdated,
        EventType::ProductDeleted,
        EventType::StockAdjusted,
        EventType::ImportFinished,
        EventType::ExportFinished,
    ];

    /// The name on the wire (`product.created`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ProductCreated => "product.created",
            EventType::ProductUpdated => "product.updated",
            EventType::ProductDeleted => "product.deleted",
            EventType::StockAdjusted => "stock.adjusted",
            EventType::ImportFinished => "import.finished",
            EventType::ExportFinished => "export.finished",
        }
    }

    /// The event type named `name`, if any.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// A target URL, checked for form only (scheme, host, no credentials, length); whether its host
/// may be reached is the delivery side's rule (`webhooks::target`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    /// Parses an absolute `http` or `https` URL with a host and without user info or fragment.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        if text.len() > MAX_URL_LEN {
            return Err(Invalid::new(
                "too_long",
                format!("must be at most {MAX_URL_LEN} bytes"),
            ));
        }
        let url = url::Url::parse(text).map_err(|_| Invalid::new("invalid_url", "is not an absolute URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Invalid::new("invalid_scheme", "must be an http or https URL"));
        }
        if url.host().is_none() {
            return Err(Invalid::new("invalid_url", "must name a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Invalid::new("invalid_url", "must not carry credentials"));
        }
        if url.fragment().is_some() {
            return Err(Invalid::new("invalid_url", "must not have a fragment"));
        }
        Ok(WebhookUrl(url))
    }

    /// The parsed URL.
    pub fn url(&self) -> &url::Url {
        &self.0
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// The events of an endpoint: at least one, each known, each once (sorted).
pub fn parse_events(names: &[String]) -> Result<Vec<EventType>, Invalid> {
    if names.is_empty() {
        return Err(Invalid::new("too_short", "must name at least one event"));
    }
    let mut events = Vec::with_capacity(names.len());
    for name in names {
        let event = EventType::parse(name).ok_or_else(|| {
            let known: Vec<&str> = EventType::ALL.iter().map(|e| e.as_str()).collect();
            Invalid::new(
                "unknown_event",
                format!(
                    "`{}` is not one of {}",
                    name.chars().take(64).collect::<String>(),
                    known.join(", ")
                ),
            )
        })?;
        events.push(event);
    }
    events.sort();
    events.dedup();
    Ok(events)
}

/// A description: at most [`MAX_DESCRIPTION_CHARS`] characters.
pub fn parse_description(text: &str) -> Result<String, Invalid> {
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Invalid::new(
            "too_long",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(text.to_owned())
}

/// What an endpoint is made of, as created.
#[derive(Debug, Clone)]
pub struct WebhookDraft {
    /// Where events are sent.
    pub url: WebhookUrl,
    /// What is sent.
    pub events: Vec<EventType>,
    /// For people.
    pub description: Option<String>,
}

/// A change to an endpoint: each field absent (unchanged) or its new value.
#[derive(Debug, Clone, Default)]
pub struct WebhookChange {
    /// A new target.
    pub url: Option<WebhookUrl>,
    /// A new subscription.
    pub events: Option<Vec<EventType>>,
    /// A new description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// Stops (true) or resumes (false) deliveries.
    pub disabled: Option<bool>,
}

/// A stored endpoint (without its secrets).
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Assigned by the store.
    pub id: i64,
    /// Where events are sent.
    pub url: String,
    /// What is sent.
    pub events: Vec<EventType>,
    /// For people.
    pub description: Option<String>,
    /// No delivery is attempted while true.
    pub disabled: bool,
    /// When its attempts started failing without a success since (`None`: the last succeeded).
    pub failing_since: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Every attempt failed; only a manual retry sends it again.
    Dead,
}

impl DeliveryStatus {
    /// The name on the wire and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    /// The status named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "dead" => Some(DeliveryStatus::Dead),
            _ => None,
        }
    }
}

/// One event's delivery to one endpoint, as the delivery log shows it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Assigned by the store.
    pub id: i64,
    /// The endpoint.
    pub endpoint_id: i64,
    /// The event's id (`evt_...`), the `webhook-id` of every attempt.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i64,
    /// The HTTP status of the last attempt, when it got an answer.
    pub last_status: Option<i64>,
    /// Why the last attempt failed, when it did.
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the event happened.
    pub created_at: DateTime<Utc>,
    /// When the delivery last changed.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_http_a_host_and_no_credentials() {
        assert!(WebhookUrl::parse("https://example.com/hook").is_ok());
        assert!(WebhookUrl::parse("http://10.0.0.1:8080/x").is_ok());
        assert_eq!(
            WebhookUrl::parse("ftp://example.com").err().map(|e| e.code),
            Some("invalid_scheme")
        );
        assert_eq!(
            WebhookUrl::parse("https://u:p@example.com").err().map(|e| e.code),
            Some("invalid_url")
        );
        assert_eq!(
            WebhookUrl::parse("not a url").err().map(|e| e.code),
            Some("invalid_url")
        );
        assert!(WebhookUrl::parse(&format!("https://e.com/{}", "a".repeat(MAX_URL_LEN))).is_err());
    }

    #[test]
    fn events_are_known_deduplicated_and_not_empty() {
        let names = vec![
            "stock.adjusted".to_owned(),
            "product.created".to_owned(),
            "stock.adjusted".to_owned(),
        ];
        assert_eq!(
            parse_events(&names).ok(),
            Some(vec![EventType::ProductCreated, EventType::StockAdjusted])
        );
        assert_eq!(parse_events(&[]).err().map(|e| e.code), Some("too_short"));
        assert_eq!(
            parse_events(&["product.exploded".to_owned()])
                .err()
                .map(|e| e.code),
            Some("unknown_event")
        );
    }
}
