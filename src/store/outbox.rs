//! The transactional outbox: an event is a row written in the same transaction as the change it
//! reports, so a committed change always has its event and a rolled-back one never does. The
//! delivery loop (`webhooks`) fans each event out to the subscribed endpoints later.
//!
//! Any write transaction can emit one: `outbox::record(&mut *tx, EventType::..., data).await?`
//! with `tx` the open transaction of either backend.
//!
//! Retention: housekeeping (`jobs::purge_once`) deletes finished deliveries and then the events
//! no delivery refers to any more, one bounded batch per call (see [`Store::purge_deliveries`]).

use std::future::Future;

use serde::Serialize;
use tracing::instrument;

use super::{Store, StoreError, Timestamp, on_db};
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

/// An event rendered for the outbox, not yet written.
#[derive(Debug, Clone)]
pub struct Rendered {
    event_id: String,
    event_type: &'static str,
    payload: String,
    at: Timestamp,
}

/// Renders an event of `event_type` carrying `data`: its id (`evt_...`, the `webhook-id` of its
/// deliveries) and the body every delivery sends.
pub fn render(event_type: EventType, data: serde_json::Value) -> Result<Rendered, StoreError> {
    let at = Timestamp::now();
    let event_id = format!("evt_{}", uuid::Uuid::now_v7().simple());
    let envelope = Envelope {
        id: &event_id,
        event_type: event_type.as_str(),
        created_at: at.0.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        data,
    };
    let payload = serde_json::to_string(&envelope).map_err(StoreError::Render)?;
    Ok(Rendered {
        event_id,
        event_type: event_type.as_str(),
        payload,
        at,
    })
}

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

    /// Inserts many outbox rows in one statement (an import batch's events: one statement
    /// instead of one per product).
    fn insert_events(&mut self, events: &[Rendered]) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// For each of `event_types`, whether an enabled endpoint subscribes to it now (one query).
    /// A bulk write asks once and records none of a type's events when none does: fan-out sends
    /// an event only to the endpoints enabled when it runs, so an event nobody subscribed to is
    /// never delivered anyway, and a million of them cost an import about as much as its products.
    fn subscribed<const N: usize>(
        &mut self,
        event_types: [EventType; N],
    ) -> impl Future<Output = Result<[bool; N], sqlx::Error>> + Send;
}

macro_rules! outbox_writer {
    ($connection:ty, $dialect:expr) => {
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

            async fn insert_events(&mut self, events: &[Rendered]) -> Result<(), sqlx::Error> {
                // Small enough for either engine's limit on parameters.
                for chunk in events.chunks(1000) {
                    let values = (0..chunk.len())
                        .map(|i| {
                            let p = |k: usize| $dialect.placeholder(i * 4 + k);
                            format!("({}, {}, {}, {})", p(1), p(2), p(3), p(4))
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    let sql = format!(
                        "INSERT INTO webhook_outbox (event_id, event_type, payload, created_at) VALUES {values}"
                    );
                    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for event in chunk {
                        insert = insert
                            .bind(event.event_id.as_str())
                            .bind(event.event_type)
                            .bind(event.payload.as_str())
                            .bind(event.at);
                    }
                    insert.execute(&mut *self).await?;
                }
                Ok(())
            }

            async fn subscribed<const N: usize>(
                &mut self,
                event_types: [EventType; N],
            ) -> Result<[bool; N], sqlx::Error> {
                let endpoints: Vec<String> =
                    sqlx::query_scalar("SELECT events FROM webhook_endpoints WHERE NOT disabled")
                        .fetch_all(&mut *self)
                        .await?;
                let endpoints: Vec<Option<Vec<EventType>>> = endpoints
                    .iter()
                    .map(|events| super::webhooks::parse_events_json(events))
                    .collect();
                // An unreadable list counts as a subscription: recording too much is safe.
                Ok(event_types.map(|event_type| {
                    endpoints
                        .iter()
                        .any(|types| types.as_ref().is_none_or(|types| types.contains(&event_type)))
                }))
            }
        }
    };
}
outbox_writer!(sqlx::SqliteConnection, super::Dialect::Sqlite);
outbox_writer!(sqlx::PgConnection, super::Dialect::Postgres);

/// Records an event of `event_type` carrying `data` in the open transaction `tx` (pass
/// `&mut *tx`); returns the event's id (`evt_...`, the `webhook-id` of its deliveries). It
/// commits or rolls back with the change.
pub async fn record<W: OutboxWriter + ?Sized>(
    tx: &mut W,
    event_type: EventType,
    data: serde_json::Value,
) -> Result<String, StoreError> {
    let event = render(event_type, data)?;
    tx.insert_event(&event.event_id, event.event_type, &event.payload, event.at)
        .await?;
    Ok(event.event_id)
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

/// A finished delivery's status: the only ones the purge deletes, each kept its own time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Answered 2xx.
    Delivered,
    /// Out of attempts; what an operator retries, so kept longer.
    Dead,
}

/// Where a walk through the dispatched events stopped: the last event passed, in
/// `(dispatched_at, id)` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    dispatched_at: Timestamp,
    id: i64,
}

impl EventCursor {
    /// Before every dispatched event: none was dispatched before the epoch.
    pub fn start() -> Self {
        EventCursor {
            dispatched_at: Timestamp(chrono::DateTime::UNIX_EPOCH),
            id: 0,
        }
    }
}

/// `DELETE FROM $table` of the rows whose ids `$select` lists, as each dialect runs it with an
/// index: PostgreSQL plans `id IN (subquery)` as a hash join over the whole table whenever the
/// table looks small next to the batch, so it gets an array of ids to look up by key instead
/// (SQLite has no arrays and looks each id up by key anyway).
macro_rules! delete_listed {
    ($table:literal, $select:literal, $returning:literal) => {
        (
            concat!("DELETE FROM ", $table, " WHERE id IN (", $select, ")", $returning),
            concat!(
                "DELETE FROM ",
                $table,
                " WHERE id = ANY(ARRAY(",
                $select,
                "))",
                $returning
            ),
        )
    };
}

// The status is a literal, never a parameter: SQLite uses a partial index only for a query
// whose WHERE names its condition as written.
const PURGE_DELIVERED: (&str, &str) = delete_listed!(
    "webhook_deliveries",
    "SELECT id FROM webhook_deliveries WHERE status = 'delivered' AND updated_at < $1 LIMIT $2",
    ""
);
const PURGE_DEAD: (&str, &str) = delete_listed!(
    "webhook_deliveries",
    "SELECT id FROM webhook_deliveries WHERE status = 'dead' AND updated_at < $1 LIMIT $2",
    ""
);

/// Events dispatched before `$1`, past the cursor (`$2`, `$3`), that no delivery refers to: a
/// pending delivery keeps its event, and so does a finished one not purged yet (deleting the
/// event would cascade to it). An undispatched event (`dispatched_at` NULL) never matches.
const PURGE_EVENTS: (&str, &str) = delete_listed!(
    "webhook_outbox",
    "SELECT o.id FROM webhook_outbox o WHERE o.dispatched_at < $1 AND (o.dispatched_at, o.id) > ($2, $3) \
     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.outbox_id = o.id) \
     ORDER BY o.dispatched_at, o.id LIMIT $4",
    " RETURNING dispatched_at, id"
);

impl Store {
    /// Deletes at most `limit` deliveries with status `status` that finished before `before`;
    /// returns how many. One short statement: on SQLite it holds the single writer only for
    /// one batch. Idempotent, so instances purging at once only repeat each other's work.
    #[instrument(name = "db.purge_deliveries", skip_all, fields(status = ?status), err(level = "debug"))]
    pub async fn purge_deliveries(
        &self,
        status: Finished,
        before: Timestamp,
        limit: u64,
    ) -> Result<u64, StoreError> {
        let (sqlite, postgres) = match status {
            Finished::Delivered => PURGE_DELIVERED,
            Finished::Dead => PURGE_DEAD,
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        on_db!(self, |_reader, writer, dialect| {
            let done = sqlx::query(dialect.pick(sqlite, postgres))
                .bind(before)
                .bind(limit)
                .execute(writer)
                .await?;
            Ok(done.rows_affected())
        })
    }

    /// Deletes at most `limit` events dispatched before `before` that no delivery refers to any
    /// more, walking from `after`; returns how many, and where to go on from (`None`: the walk
    /// reached `before`). Run it after [`Store::purge_deliveries`], which frees the events.
    #[instrument(name = "db.purge_events", skip_all, err(level = "debug"))]
    pub async fn purge_events(
        &self,
        before: Timestamp,
        after: EventCursor,
        limit: u64,
    ) -> Result<(u64, Option<EventCursor>), StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let deleted: Vec<(Timestamp, i64)> = on_db!(self, |_reader, writer, dialect| {
            sqlx::query_as(dialect.pick(PURGE_EVENTS.0, PURGE_EVENTS.1))
                .bind(before)
                .bind(after.dispatched_at)
                .bind(after.id)
                .bind(limit)
                .fetch_all(writer)
                .await?
        });
        let n = deleted.len() as u64;
        // Fewer than asked: nothing deletable is left before `before`.
        let next = (i64::try_from(n).unwrap_or(i64::MAX) >= limit)
            .then(|| deleted.into_iter().max())
            .flatten()
            .map(|(dispatched_at, id)| EventCursor { dispatched_at, id });
        Ok((n, next))
    }
}
