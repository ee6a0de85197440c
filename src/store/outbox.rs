//! The transactional outbox: an event is a row written in the same transaction as the change it
//! reports, so a committed change always has its event and a rolled-back one never does. The
//! delivery loop (`webhooks`) fans each event out to the subscribed endpoints later.
//!
//! Any write transaction can emit one: `outbox::record(&mut *tx, EventType::..., data).await?`
//! with `tx` the open transaction of either backend.

use std::future::Future;

use serde::Serialize;

use super::{Store, StoreError, Timestamp};
use crate::domain::inventory::Adjustment;
use crate::domain::job::Job;
use crate::domain::product::Product;
use crate::domain::webhook::EventType;

/// How the events' `data` is rendered: the wire shapes belong to the HTTP layer, which hands
/// them to the store at start (`Store::with_event_shapes`), so `data` is exactly what the API
/// returns for the same thing.
#[derive(Debug, Clone, Copy)]
pub struct EventShapes {
    /// A product as `GET /api/v1/products/{id}` returns it.
    pub product: fn(&Product) -> serde_json::Value,
    /// A ledger entry as the stock-adjustments endpoint returns it, with the product's new
    /// `version` (the second argument).
    pub adjustment: fn(&Adjustment, i64) -> serde_json::Value,
    /// A job as `GET /api/v1/jobs/{id}` returns it.
    pub job: fn(&Job) -> serde_json::Value,
}

/// The body every delivery of an event sends.
#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'static str,
    created_at: String,
    data: serde_json::Value,
}

const INSERT_EVENT: &str =
    "INSERT INTO webhook_outbox (event_id, event_type, payload, created_at) VALUES ($1, $2, $3, $4)";

/// A connection inside an open write transaction of either backend.
pub trait OutboxWriter: Send {
    /// Inserts one outbox row.
    fn insert_event(
        &mut self,
        event_id: &str,
        event_type: &'static str,
        payload: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

macro_rules! outbox_writer {
    ($connection:ty) => {
        impl OutboxWriter for $connection {
            async fn insert_event(
                &mut self,
                event_id: &str,
                event_type: &'static str,
                payload: &str,
                at: Timestamp,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(INSERT_EVENT)
                    .bind(event_id)
                    .bind(event_type)
                    .bind(payload)
                    .bind(at)
                    .execute(&mut *self)
                    .await?;
                Ok(())
            }
        }
    };
}
outbox_writer!(sqlx::SqliteConnection);
outbox_writer!(sqlx::PgConnection);

/// Records an event of `event_type` carrying `data` in the open transaction `tx` (pass
/// `&mut *tx`); returns the event's id (`evt_...`, the `webhook-id` of its deliveries). It
/// commits or rolls back with the change.
pub async fn record<W: OutboxWriter + ?Sized>(
    tx: &mut W,
    event_type: EventType,
    data: serde_json::Value,
) -> Result<String, StoreError> {
    let now = Timestamp::now();
    let event_id = format!("evt_{}", uuid::Uuid::now_v7().simple());
    let envelope = Envelope {
        id: &event_id,
        event_type: event_type.as_str(),
        created_at: now.0.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        data,
    };
    let payload = serde_json::to_string(&envelope).map_err(StoreError::Render)?;
    tx.insert_event(&event_id, event_type.as_str(), &payload, now)
        .await?;
    Ok(event_id)
}

impl Store {
    /// Renders the store's product and adjustment events with `shapes`. A store without shapes
    /// records no events; `startup::open_store` always gives them.
    pub fn with_event_shapes(mut self, shapes: EventShapes) -> Self {
        self.event_shapes = Some(shapes);
        self
    }

    /// The `data` of a product event, when events are recorded.
    pub(crate) fn product_event(&self, product: &Product) -> Option<serde_json::Value> {
        self.event_shapes.map(|shapes| (shapes.product)(product))
    }

    /// The `data` of an `import.finished` or `export.finished` event, when events are recorded.
    pub(crate) fn job_event(&self, job: &Job) -> Option<serde_json::Value> {
        self.event_shapes.map(|shapes| (shapes.job)(job))
    }

    /// The `data` of a `stock.adjusted` event, when events are recorded.
    pub(crate) fn adjustment_event(
        &self,
        adjustment: &Adjustment,
        version: i64,
    ) -> Option<serde_json::Value> {
        self.event_shapes
            .map(|shapes| (shapes.adjustment)(adjustment, version))
    }
}

/// Records `data` as an event when there is one (see [`Store::product_event`]).
pub(crate) async fn record_some<W: OutboxWriter + ?Sized>(
    tx: &mut W,
    event_type: EventType,
    data: Option<serde_json::Value>,
) -> Result<(), StoreError> {
    if let Some(data) = data {
        record(tx, event_type, data).await?;
    }
    Ok(())
}
