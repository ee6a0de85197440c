//! The delivery loop: fan out recorded events, claim due deliveries, send each once, record how
//! it went. At least once: a process killed mid-attempt leaves the delivery leased, and it is
//! sent again, with the same `webhook-id`, once the lease has passed.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};

use super::{MAX_ATTEMPTS, WebhookSettings, signature, target};
use crate::domain::webhook::DeliveryStatus;
use crate::store::webhooks::{AttemptRecord, ClaimedDelivery};
use crate::store::{Store, Timestamp};

/// How long the loop sleeps when there is nothing to do.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Events fanned out per transaction.
const DISPATCH_BATCH: u64 = 500;
/// Deliveries claimed per transaction, at most.
const CLAIM_BATCH: usize = 256;
/// Outcomes recorded per transaction, at most.
const RECORD_BATCH: usize = 256;
/// How often the outbox lag gauge is refreshed.
const LAG_EVERY: Duration = Duration::from_secs(1);
/// The most of a receiver's answer read (so its connection can be reused); the rest is dropped.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Runs deliveries until `shutdown` resolves: fans recorded events out into deliveries, sends
/// the due ones (at most `settings.concurrency` at once), records their outcomes, and keeps the
/// outbox lag gauge. Errors of the database are logged and retried on the next round.
pub async fn run_due_deliveries(
    store: Store,
    client: reqwest::Client,
    settings: WebhookSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    let settings = Arc::new(settings);
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let half = (settings.concurrency / 2).clamp(1, CLAIM_BATCH);
    let (outcomes, received) = mpsc::unbounded_channel::<AttemptRecord>();
    let recorder = tokio::spawn(record_outcomes(store.clone(), settings.clone(), received));
    let work = async {
        let mut lag_at = Instant::now();
        loop {
            let mut busy = false;
            match store.dispatch_outbox(DISPATCH_BATCH).await {
                Ok(n) => busy |= n > 0,
                Err(error) => tracing::warn!(%error, "cannot fan out webhook events"),
            }
            let free = slots.available_permits().min(CLAIM_BATCH);
            if free > 0 {
                match store.claim_deliveries(free as u64, settings.lease()).await {
                    Ok(claimed) => {
                        busy |= !claimed.is_empty();
                        for delivery in claimed {
                            let Ok(permit) = slots.clone().acquire_owned().await else {
                                return;
                            };
                            let (client, settings, outcomes) =
                                (client.clone(), settings.clone(), outcomes.clone());
                            tokio::spawn(async move {
                                let record = attempt(&client, &settings, delivery).await;
                                let _ = outcomes.send(record);
                                drop(permit);
                            });
                        }
                    }
                    Err(error) => tracing::warn!(%error, "cannot claim webhook deliveries"),
                }
            }
            if lag_at.elapsed() >= LAG_EVERY {
                lag_at = Instant::now();
                if let Ok(lag) = store.outbox_lag().await {
                    crate::metrics::webhook_outbox_lag(lag);
                }
            }
            if !busy {
                tokio::time::sleep(IDLE_POLL).await;
            } else if slots.available_permits() < half {
                // Most slots busy: wait until half are free, so the next claim takes a batch in
                // one transaction rather than one delivery per transaction.
                if let Ok(permits) = slots.acquire_many(half as u32).await {
                    drop(permits);
                }
            }
        }
    };
    tokio::select! {
        () = work => {}
        () = shutdown => {}
    }
    recorder.abort();
}

/// Records outcomes in batches, one transaction each.
async fn record_outcomes(
    store: Store,
    settings: Arc<WebhookSettings>,
    mut received: mpsc::UnboundedReceiver<AttemptRecord>,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while received.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let disable_before = Timestamp(
            Timestamp::now().0 - chrono::Duration::from_std(settings.disable_after).unwrap_or_default(),
        );
        match store.record_attempts(&batch, disable_before).await {
            Ok(disabled) => {
                for endpoint_id in disabled {
                    tracing::warn!(
                        endpoint_id,
                        "webhook endpoint disabled: its deliveries have failed for too long"
                    );
                    crate::metrics::webhook_endpoint_disabled();
                }
            }
            // Their leases will pass and they will be sent again: at least once.
            Err(error) => tracing::warn!(%error, n = batch.len(), "cannot record webhook attempts"),
        }
        batch.clear();
    }
}

/// A random factor in [0.75, 1.25).
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    0.75 + f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX) * 0.5
}

/// The secrets that sign now: the current one, and the previous one during its overlap.
fn signing_secrets(delivery: &ClaimedDelivery, now: Timestamp) -> Vec<&str> {
    let mut secrets = vec![delivery.secret.as_str()];
    if let (Some(previous), Some(until)) = (&delivery.previous_secret, delivery.previous_secret_until)
        && until > now
    {
        secrets.push(previous.as_str());
    }
    secrets
}

/// Sends one attempt and says how it ended.
#[tracing::instrument(name = "webhook.attempt", skip_all, fields(delivery_id = delivery.id, endpoint_id = delivery.endpoint_id, attempt = delivery.attempts))]
async fn attempt(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    delivery: ClaimedDelivery,
) -> AttemptRecord {
    let now = Timestamp::now();
    let started = Instant::now();
    let result = send(client, settings, &delivery, now).await;
    let elapsed = started.elapsed();
    let failed = |http_status: Option<u16>, error: String| {
        let dead = delivery.attempts >= MAX_ATTEMPTS;
        let delay = settings.backoff(delivery.attempts).mul_f64(jitter());
        AttemptRecord {
            delivery_id: delivery.id,
            endpoint_id: delivery.endpoint_id,
            status: if dead {
                DeliveryStatus::Dead
            } else {
                DeliveryStatus::Pending
            },
            http_status,
            error: Some(error),
            retry_at: (!dead)
                .then(|| Timestamp(now.0 + chrono::Duration::from_std(delay).unwrap_or_default())),
        }
    };
    let record = match result {
        Ok(status) if (200..300).contains(&status) => AttemptRecord {
            delivery_id: delivery.id,
            endpoint_id: delivery.endpoint_id,
            status: DeliveryStatus::Delivered,
            http_status: Some(status),
            error: None,
            retry_at: None,
        },
        Ok(status) => failed(Some(status), format!("answered {status}")),
        Err(error) => failed(None, error),
    };
    let outcome = match record.status {
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Pending => "retry",
        DeliveryStatus::Dead => "dead",
    };
    crate::metrics::webhook_attempt(outcome, elapsed);
    tracing::debug!(outcome, status = record.http_status, "webhook attempt");
    record
}

/// POSTs the event; the receiver's status, or why there was none.
async fn send(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    delivery: &ClaimedDelivery,
    now: Timestamp,
) -> Result<u16, String> {
    let url = url::Url::parse(&delivery.url).map_err(|e| format!("invalid URL: {e}"))?;
    if let Some(ip) = target::literal_refused(&url, settings) {
        return Err(format!(
            "refused: {ip} is a loopback, private, link-local or reserved address"
        ));
    }
    let timestamp = now.0.timestamp();
    let body = delivery.payload.as_bytes();
    let signatures = signature::header(
        &signing_secrets(delivery, now),
        &delivery.event_id,
        timestamp,
        body,
    );
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signatures)
        .body(delivery.payload.clone())
        .send()
        .await
        .map_err(describe)?;
    let status = response.status().as_u16();
    // Read a little of the answer so the connection can be reused; a longer one is cut.
    let mut response = response;
    let mut read = 0;
    while read < MAX_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
    Ok(status)
}

/// Why a request got no answer, without the URL (it may carry a token in its query).
fn describe(error: reqwest::Error) -> String {
    use std::error::Error;
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = error.source();
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}
