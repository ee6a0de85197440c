//! Background work: the job queue's workers (`runner`) and housekeeping on a timer.

pub mod runner;

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::store::outbox::{EventCursor, Finished};
use crate::store::{Store, StoreError, Timestamp};
use crate::webhooks::WebhookRetention;

/// What housekeeping deletes, and how often.
#[derive(Debug, Clone, Copy)]
pub struct Housekeeping {
    /// How often a round runs (`TIENDA_PURGE_INTERVAL_SECS`).
    pub every: Duration,
    /// How long an export's file is served (`TIENDA_EXPORT_TTL_HOURS`).
    pub export_ttl: Duration,
    /// How long finished webhook deliveries and their events are kept.
    pub webhooks: WebhookRetention,
}

impl Housekeeping {
    /// Housekeeping as configured.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Housekeeping {
            every: config.jobs.purge_every,
            export_ttl: config.jobs.export_ttl,
            webhooks: config.webhooks.retention,
        }
    }
}

/// Rows one purge statement deletes at most: on SQLite a batch holds the single writer, so it
/// must stay short (a few milliseconds) for requests to keep writing in between.
pub const PURGE_BATCH: u64 = 1000;
/// The rest between two batches, in which the writes the batch held back go through.
const PURGE_PAUSE: Duration = Duration::from_millis(20);

/// Deletes idempotency records past their 24 h retention, refresh tokens and console sessions
/// past their expiry, export files past their time to live, and finished webhook deliveries and
/// events past theirs, at start and then every `housekeeping.every`. Aborted with the server.
/// Every instance and worker process runs it: each delete is idempotent, so two at once only
/// repeat each other's work.
pub fn spawn_purge(store: Store, housekeeping: Housekeeping) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(housekeeping.every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            purge_once(&store, &housekeeping).await;
        }
    })
}

/// One round of housekeeping; failures are logged, never fatal.
pub async fn purge_once(store: &Store, housekeeping: &Housekeeping) {
    match store.purge_job_files(housekeeping.export_ttl).await {
        Ok(n) if n > 0 => tracing::info!(deleted = n, "purged expired export files and abandoned uploads"),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot purge job files"),
    }
    match store.purge_idempotency_keys().await {
        Ok(n) if n > 0 => tracing::info!(deleted = n, "purged expired idempotency keys"),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot purge idempotency keys"),
    }
    match store.purge_refresh_tokens(chrono::Utc::now()).await {
        Ok(n) if n > 0 => tracing::info!(deleted = n, "purged expired refresh tokens"),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot purge refresh tokens"),
    }
    match store.purge_admin_sessions(chrono::Utc::now()).await {
        Ok(n) if n > 0 => tracing::info!(deleted = n, "purged expired console sessions"),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot purge console sessions"),
    }
    let mut purged = WebhookPurge::default();
    let outcome = purge_webhooks(store, &housekeeping.webhooks, &mut purged).await;
    if purged.total() > 0 {
        tracing::info!(
            delivered = purged.delivered,
            dead = purged.dead,
            events = purged.events,
            "purged old webhook deliveries and events"
        );
    }
    if let Err(error) = outcome {
        tracing::warn!(%error, "cannot purge webhook deliveries and events");
    }
}

/// Rows one webhook purge deleted, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WebhookPurge {
    /// Delivered deliveries.
    pub delivered: u64,
    /// Dead deliveries.
    pub dead: u64,
    /// Outbox events.
    pub events: u64,
}

impl WebhookPurge {
    fn total(&self) -> u64 {
        self.delivered + self.dead + self.events
    }
}

/// Deletes finished deliveries past their retention, then the events no delivery refers to any
/// more, in batches of [`PURGE_BATCH`] with a pause between them; adds what went to `purged`
/// (and to the metric) as it goes, so a failure half-way still reports what was deleted.
pub async fn purge_webhooks(
    store: &Store,
    retention: &WebhookRetention,
    purged: &mut WebhookPurge,
) -> Result<(), StoreError> {
    let now = Timestamp::now().0;
    // A retention too long to subtract keeps everything.
    let before = |keep: Duration| {
        let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        Timestamp(
            now.checked_sub_signed(keep)
                .unwrap_or(chrono::DateTime::UNIX_EPOCH),
        )
    };
    for (status, keep) in [
        (Finished::Delivered, retention.delivered),
        (Finished::Dead, retention.dead),
    ] {
        let cutoff = before(keep);
        loop {
            let n = store.purge_deliveries(status, cutoff, PURGE_BATCH).await?;
            let (label, count) = match status {
                Finished::Delivered => ("delivered", &mut purged.delivered),
                Finished::Dead => ("dead", &mut purged.dead),
            };
            *count += n;
            crate::metrics::webhook_rows_purged(label, n);
            if n < PURGE_BATCH {
                break;
            }
            tokio::time::sleep(PURGE_PAUSE).await;
        }
    }
    let cutoff = before(retention.delivered);
    let mut cursor = EventCursor::start();
    loop {
        let (n, next) = store.purge_events(cutoff, cursor, PURGE_BATCH).await?;
        purged.events += n;
        crate::metrics::webhook_rows_purged("event", n);
        match next {
            Some(next) => cursor = next,
            None => break,
        }
        tokio::time::sleep(PURGE_PAUSE).await;
    }
    Ok(())
}
