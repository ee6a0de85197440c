//! Background work: the job queue's workers (`runner`) and housekeeping on a timer.

pub mod runner;

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::store::Store;

/// How often expired idempotency records, refresh tokens and console sessions are deleted.
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Deletes idempotency records past their 24 h retention, refresh tokens past their expiry, and
/// export files past `export_ttl`,
/// at start and then every `every`. Aborted with the server.
pub fn spawn_purge(store: Store, every: Duration, export_ttl: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            purge_once(&store, export_ttl).await;
        }
    })
}

/// One round of housekeeping; failures are logged, never fatal.
pub async fn purge_once(store: &Store, export_ttl: Duration) {
    match store.purge_job_files(export_ttl).await {
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
}
