//! Webhook endpoints, and the deliveries queue the delivery loop works through.

use std::time::Duration;

use sqlx::FromRow;
use tracing::instrument;

use super::idempotency::write_transaction;
use super::{Store, StoreError, Timestamp, for_update, on_db};
use crate::domain::webhook::{Delivery, DeliveryStatus, EventType, Webhook, WebhookChange, WebhookDraft};

/// The columns of an endpoint, in the order [`EndpointRow`] reads them.
macro_rules! endpoint_columns {
    () => {
        "id, url, events, description, disabled, failing_since, created_at, updated_at"
    };
}

/// The columns of a delivery (`d`) and its event (`o`), in the order [`DeliveryRow`] reads them.
macro_rules! delivery_columns {
    () => {
        "d.id, d.endpoint_id, o.event_id, o.event_type, d.status, d.attempts, d.last_status, \
         d.last_error, d.next_attempt_at, d.created_at, d.updated_at"
    };
}

/// The due deliveries of enabled endpoints, oldest due first, `$1` now and `$3` how many, with
/// the row lock clause `$lock`.
macro_rules! due_deliveries {
    ($lock:literal) => {
        concat!(
            "SELECT d.id FROM webhook_deliveries d WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
             AND (d.lease_until IS NULL OR d.lease_until <= $1) \
             AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = d.endpoint_id AND NOT e.disabled) \
             ORDER BY d.next_attempt_at LIMIT $3",
            $lock
        )
    };
}

#[derive(Debug, FromRow)]
struct EndpointRow {
    id: i64,
    url: String,
    events: String,
    description: Option<String>,
    disabled: bool,
    failing_since: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

const SELECT_ENDPOINT: &str = concat!(
    "SELECT ",
    endpoint_columns!(),
    " FROM webhook_endpoints WHERE id = $1"
);

fn events_json(events: &[EventType]) -> String {
    let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".to_owned())
}

pub(super) fn parse_events_json(text: &str) -> Option<Vec<EventType>> {
    let names: Vec<String> = serde_json::from_str(text).ok()?;
    names.iter().map(|n| EventType::parse(n)).collect()
}

impl TryFrom<EndpointRow> for Webhook {
    type Error = StoreError;

    fn try_from(row: EndpointRow) -> Result<Self, Self::Error> {
        let events = parse_events_json(&row.events)
            .ok_or_else(|| StoreError::Corrupt(format!("webhook {}: events", row.id)))?;
        Ok(Webhook {
            id: row.id,
            url: row.url,
            events,
            description: row.description,
            disabled: row.disabled,
            failing_since: row.failing_since.map(|t| t.0),
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        })
    }
}

#[derive(Debug, FromRow)]
struct DeliveryRow {
    id: i64,
    endpoint_id: i64,
    event_id: String,
    event_type: String,
    status: String,
    attempts: i32,
    last_status: Option<i32>,
    last_error: Option<String>,
    next_attempt_at: Timestamp,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;

    fn try_from(row: DeliveryRow) -> Result<Self, Self::Error> {
        let status = DeliveryStatus::parse(&row.status)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery {}: status", row.id)))?;
        Ok(Delivery {
            id: row.id,
            endpoint_id: row.endpoint_id,
            event_id: row.event_id,
            event_type: row.event_type,
            status,
            attempts: i64::from(row.attempts),
            last_status: row.last_status.map(i64::from),
            last_error: row.last_error,
            next_attempt_at: (status == DeliveryStatus::Pending).then_some(row.next_attempt_at.0),
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        })
    }
}

/// A delivery taken by a worker for one attempt, with what the attempt needs.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedDelivery {
    /// The delivery.
    pub id: i64,
    /// Attempts made, this one included.
    pub attempts: i32,
    /// The endpoint.
    pub endpoint_id: i64,
    /// Where to send.
    pub url: String,
    /// The current signing secret (`whsec_...`).
    pub secret: String,
    /// The secret before the last rotation, while it still signs.
    pub previous_secret: Option<String>,
    /// Until when the previous secret signs.
    pub previous_secret_until: Option<Timestamp>,
    /// The `webhook-id`.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The body, byte for byte the same on every attempt.
    pub payload: String,
    /// When the event was recorded.
    pub event_created_at: Timestamp,
}

/// How one attempt ended, as the store records it.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The delivery.
    pub delivery_id: i64,
    /// Its endpoint.
    pub endpoint_id: i64,
    /// `Delivered`, `Pending` (to be tried again at `retry_at`) or `Dead`.
    pub status: DeliveryStatus,
    /// The HTTP status received, if any.
    pub http_status: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// When to try again (`Pending` only).
    pub retry_at: Option<Timestamp>,
}

/// The longest `last_error` kept.
const MAX_ERROR_LEN: usize = 500;

impl Store {
    /// Inserts an endpoint with its signing secret.
    #[instrument(name = "db.create_webhook", skip_all, err(level = "debug"))]
    pub async fn create_webhook(&self, draft: &WebhookDraft, secret: &str) -> Result<Webhook, StoreError> {
        let now = Timestamp::now();
        on_db!(self, |_reader, writer, _dialect| {
            let row: EndpointRow = sqlx::query_as(concat!(
                "INSERT INTO webhook_endpoints (url, events, description, disabled, secret, created_at, updated_at) \
                 VALUES ($1, $2, $3, FALSE, $4, $5, $5) RETURNING ",
                endpoint_columns!()
            ))
                .bind(draft.url.as_str())
                .bind(events_json(&draft.events))
                .bind(draft.description.as_deref())
                .bind(secret)
                .bind(now)
                .fetch_one(writer)
                .await?;
            Webhook::try_from(row)
        })
    }

    /// One offset page of endpoints in id order, and how many there are.
    #[instrument(name = "db.list_webhooks", skip_all, err(level = "debug"))]
    pub async fn list_webhooks(&self, limit: u64, offset: u64) -> Result<(Vec<Webhook>, u64), StoreError> {
        let (limit, offset) = (clamp(limit), clamp(offset));
        on_db!(self, |reader, _writer, _dialect| {
            let rows: Vec<EndpointRow> = sqlx::query_as(concat!(
                "SELECT ",
                endpoint_columns!(),
                " FROM webhook_endpoints ORDER BY id LIMIT $1 OFFSET $2"
            ))
            .bind(limit)
            .bind(offset)
            .fetch_all(reader)
            .await?;
            let total: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints")
                .fetch_one(reader)
                .await?;
            let items = rows
                .into_iter()
                .map(Webhook::try_from)
                .collect::<Result<_, _>>()?;
            Ok((items, total.max(0) as u64))
        })
    }

    /// An endpoint by id.
    #[instrument(name = "db.get_webhook", skip_all, fields(webhook_id = id), err(level = "debug"))]
    pub async fn get_webhook(&self, id: i64) -> Result<Webhook, StoreError> {
        on_db!(self, |reader, _writer, _dialect| {
            let row: Option<EndpointRow> = sqlx::query_as(SELECT_ENDPOINT)
                .bind(id)
                .fetch_optional(reader)
                .await?;
            row.ok_or(StoreError::NotFound).and_then(Webhook::try_from)
        })
    }

    /// Applies `change` to an endpoint. Enabling it again forgets its run of failures.
    #[instrument(name = "db.update_webhook", skip_all, fields(webhook_id = id), err(level = "debug"))]
    pub async fn update_webhook(&self, id: i64, change: &WebhookChange) -> Result<Webhook, StoreError> {
        let now = Timestamp::now();
        write_transaction!(self, |tx, dialect| {
            let current: Option<EndpointRow> = sqlx::query_as(for_update!(
                dialect,
                concat!(
                    "SELECT ",
                    endpoint_columns!(),
                    " FROM webhook_endpoints WHERE id = $1"
                )
            ))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let current = Webhook::try_from(current.ok_or(StoreError::NotFound)?)?;
            let disabled = change.disabled.unwrap_or(current.disabled);
            let failing_since = if current.disabled && !disabled {
                None
            } else {
                current.failing_since.map(Timestamp)
            };
            let events = change.events.as_deref().unwrap_or(&current.events);
            let row: EndpointRow = sqlx::query_as(concat!(
                "UPDATE webhook_endpoints SET url = $2, events = $3, description = $4, disabled = $5, \
                 failing_since = $6, updated_at = $7 WHERE id = $1 RETURNING ",
                endpoint_columns!()
            ))
            .bind(id)
            .bind(change.url.as_ref().map_or(current.url.as_str(), |u| u.as_str()))
            .bind(events_json(events))
            .bind(match &change.description {
                Some(description) => description.as_deref(),
                None => current.description.as_deref(),
            })
            .bind(disabled)
            .bind(failing_since)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            Webhook::try_from(row)
        })
    }

    /// Deletes an endpoint and its deliveries.
    #[instrument(name = "db.delete_webhook", skip_all, fields(webhook_id = id), err(level = "debug"))]
    pub async fn delete_webhook(&self, id: i64) -> Result<(), StoreError> {
        on_db!(self, |_reader, writer, _dialect| {
            let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
                .bind(id)
                .execute(writer)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    /// Makes `secret` the endpoint's signing secret; the one it replaces keeps signing for
    /// `overlap`.
    #[instrument(name = "db.rotate_webhook_secret", skip_all, fields(webhook_id = id), err(level = "debug"))]
    pub async fn rotate_webhook_secret(
        &self,
        id: i64,
        secret: &str,
        overlap: Duration,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let until = Timestamp(now.0 + chrono::Duration::from_std(overlap).unwrap_or_default());
        on_db!(self, |_reader, writer, _dialect| {
            let done = sqlx::query(
                "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = $3, \
                 secret = $2, updated_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(secret)
            .bind(until)
            .bind(now)
            .execute(writer)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    /// One offset page of an endpoint's deliveries, newest first, and how many there are.
    #[instrument(name = "db.list_deliveries", skip_all, fields(webhook_id = endpoint_id), err(level = "debug"))]
    pub async fn list_deliveries(
        &self,
        endpoint_id: i64,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<Delivery>, u64), StoreError> {
        let (limit, offset) = (clamp(limit), clamp(offset));
        on_db!(self, |reader, _writer, _dialect| {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE id = $1")
                .bind(endpoint_id)
                .fetch_optional(reader)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
            let rows: Vec<DeliveryRow> = sqlx::query_as(concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM webhook_deliveries d JOIN webhook_outbox o ON o.id = d.outbox_id \
                 WHERE d.endpoint_id = $1 ORDER BY d.id DESC LIMIT $2 OFFSET $3"
            ))
            .bind(endpoint_id)
            .bind(limit)
            .bind(offset)
            .fetch_all(reader)
            .await?;
            let total: i64 =
                sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1")
                    .bind(endpoint_id)
                    .fetch_one(reader)
                    .await?;
            let items = rows
                .into_iter()
                .map(Delivery::try_from)
                .collect::<Result<_, _>>()?;
            Ok((items, total.max(0) as u64))
        })
    }

    /// Makes a delivery due now, whatever its status: one more attempt for a dead one, a
    /// resend for a delivered one, no more waiting for a pending one.
    #[instrument(name = "db.retry_delivery", skip_all, fields(webhook_id = endpoint_id, delivery_id), err(level = "debug"))]
    pub async fn retry_delivery(&self, endpoint_id: i64, delivery_id: i64) -> Result<Delivery, StoreError> {
        let now = Timestamp::now();
        write_transaction!(self, |tx, dialect| {
            let done = sqlx::query(
                "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $3, lease_until = NULL, \
                 updated_at = $3 WHERE id = $1 AND endpoint_id = $2",
            )
            .bind(delivery_id)
            .bind(endpoint_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let row: DeliveryRow = sqlx::query_as(concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM webhook_deliveries d JOIN webhook_outbox o ON o.id = d.outbox_id WHERE d.id = $1"
            ))
            .bind(delivery_id)
            .fetch_one(&mut *tx)
            .await?;
            Delivery::try_from(row)
        })
    }
}

/// A page bound as SQL takes it.
fn clamp(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
}

// The delivery loop's side: fan out, claim, record.
impl Store {
    /// Fans up to `limit` recorded events out into one pending delivery per enabled endpoint
    /// subscribed to their type, and marks them dispatched; returns how many events. Several
    /// workers may run this at once: PostgreSQL hands each its own events (`SKIP LOCKED`),
    /// SQLite's single write transaction serialises them.
    #[instrument(name = "db.dispatch_outbox", skip_all, err(level = "debug"))]
    pub async fn dispatch_outbox(&self, limit: u64) -> Result<u64, StoreError> {
        let now = Timestamp::now();
        write_transaction!(self, |tx, dialect| {
            let events: Vec<(i64, String, Timestamp)> = sqlx::query_as(dialect.pick(
                "SELECT id, event_type, created_at FROM webhook_outbox WHERE dispatched_at IS NULL ORDER BY id LIMIT $1",
                "SELECT id, event_type, created_at FROM webhook_outbox WHERE dispatched_at IS NULL ORDER BY id LIMIT $1 \
                 FOR UPDATE SKIP LOCKED",
            ))
            .bind(clamp(limit))
            .fetch_all(&mut *tx)
            .await?;
            if events.is_empty() {
                return Ok(0);
            }
            let endpoints: Vec<(i64, String)> =
                sqlx::query_as("SELECT id, events FROM webhook_endpoints WHERE NOT disabled")
                    .fetch_all(&mut *tx)
                    .await?;
            let endpoints: Vec<(i64, Vec<EventType>)> = endpoints
                .into_iter()
                .filter_map(|(id, events)| parse_events_json(&events).map(|e| (id, e)))
                .collect();
            for (outbox_id, event_type, created_at) in &events {
                let event_type = EventType::parse(event_type);
                for (endpoint_id, subscribed) in &endpoints {
                    if !event_type.is_some_and(|t| subscribed.contains(&t)) {
                        continue;
                    }
                    // Due when the event happened, so the lag of a first attempt is measured
                    // from the change, not from the fan-out.
                    sqlx::query(
                        "INSERT INTO webhook_deliveries (endpoint_id, outbox_id, status, attempts, next_attempt_at, \
                         created_at, updated_at) VALUES ($1, $2, 'pending', 0, $3, $3, $4) \
                         ON CONFLICT (endpoint_id, outbox_id) DO NOTHING",
                    )
                    .bind(endpoint_id)
                    .bind(outbox_id)
                    .bind(created_at)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query("UPDATE webhook_outbox SET dispatched_at = $2 WHERE id = $1")
                    .bind(outbox_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(events.len() as u64)
        })
    }

    /// Takes up to `limit` due deliveries of enabled endpoints for one attempt each: counts the
    /// attempt and leases them for `lease`, so no other worker takes them meanwhile and a worker
    /// that dies leaves them to be taken again once the lease has passed.
    #[instrument(name = "db.claim_deliveries", skip_all, err(level = "debug"))]
    pub async fn claim_deliveries(
        &self,
        limit: u64,
        lease: Duration,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let now = Timestamp::now();
        let until = Timestamp(now.0 + chrono::Duration::from_std(lease).unwrap_or_default());
        write_transaction!(self, |tx, dialect| {
            let claimed: Vec<(i64,)> = sqlx::query_as(dialect.pick(
                concat!(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, lease_until = $2, updated_at = $1 \
                     WHERE id IN (",
                    due_deliveries!(""),
                    ") RETURNING id"
                ),
                concat!(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, lease_until = $2, updated_at = $1 \
                     WHERE id IN (",
                    due_deliveries!(" FOR UPDATE SKIP LOCKED"),
                    ") RETURNING id"
                ),
            ))
            .bind(now)
            .bind(until)
            .bind(clamp(limit))
            .fetch_all(&mut *tx)
            .await?;
            if claimed.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<String> = claimed.iter().map(|(id,)| id.to_string()).collect();
            let sql = format!(
                "SELECT d.id, d.attempts, e.id AS endpoint_id, e.url, e.secret, e.previous_secret, \
                 e.previous_secret_until, o.event_id, o.event_type, o.payload, o.created_at AS event_created_at \
                 FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                 JOIN webhook_outbox o ON o.id = d.outbox_id WHERE d.id IN ({})",
                ids.join(", ")
            );
            let rows: Vec<ClaimedDelivery> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut *tx)
                .await?;
            Ok(rows)
        })
    }

    /// Records how attempts ended, in one transaction; keeps each endpoint's run of failures
    /// and disables an endpoint whose attempts have all failed since `disable_before` or earlier.
    /// Returns the endpoints disabled now.
    #[instrument(name = "db.record_attempts", skip_all, fields(n = records.len()), err(level = "debug"))]
    pub async fn record_attempts(
        &self,
        records: &[AttemptRecord],
        disable_before: Timestamp,
    ) -> Result<Vec<i64>, StoreError> {
        let now = Timestamp::now();
        write_transaction!(self, |tx, dialect| {
            let mut disabled = Vec::new();
            for record in records {
                let error = record
                    .error
                    .as_deref()
                    .map(|e| e.chars().take(MAX_ERROR_LEN).collect::<String>());
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = $2, last_status = $3, last_error = $4, \
                     next_attempt_at = $5, lease_until = NULL, updated_at = $6 WHERE id = $1",
                )
                .bind(record.delivery_id)
                .bind(record.status.as_str())
                .bind(record.http_status.map(i32::from))
                .bind(error)
                .bind(record.retry_at.unwrap_or(now))
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if record.status == DeliveryStatus::Delivered {
                    sqlx::query(
                        "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
                    )
                    .bind(record.endpoint_id)
                    .execute(&mut *tx)
                    .await?;
                    continue;
                }
                sqlx::query(
                    "UPDATE webhook_endpoints SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL",
                )
                .bind(record.endpoint_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let off: Option<i64> = sqlx::query_scalar(
                    "UPDATE webhook_endpoints SET disabled = TRUE, updated_at = $3 \
                     WHERE id = $1 AND NOT disabled AND failing_since <= $2 RETURNING id",
                )
                .bind(record.endpoint_id)
                .bind(disable_before)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                disabled.extend(off);
            }
            Ok(disabled)
        })
    }

    /// How long the oldest event still waiting for its first send has waited: not yet fanned
    /// out, or fanned out and not yet attempted. Zero when none waits.
    pub async fn outbox_lag(&self) -> Result<Duration, StoreError> {
        let now = Timestamp::now();
        on_db!(self, |reader, _writer, _dialect| {
            let undispatched: Option<Timestamp> =
                sqlx::query_scalar("SELECT min(created_at) FROM webhook_outbox WHERE dispatched_at IS NULL")
                    .fetch_one(reader)
                    .await?;
            let unattempted: Option<Timestamp> = sqlx::query_scalar(
                "SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending' AND attempts = 0",
            )
            .fetch_one(reader)
            .await?;
            let oldest = match (undispatched, unattempted) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            Ok(oldest.map_or(Duration::ZERO, |t| (now.0 - t.0).to_std().unwrap_or_default()))
        })
    }
}
