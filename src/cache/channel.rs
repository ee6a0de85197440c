//! Invalidations shared between instances over Redis pub/sub (`TIENDA_CACHE=redis`).
//!
//! Each instance publishes what its writes changed, tagged with its own id, and applies what the
//! others publish. Pub/sub keeps nothing for a subscriber that is away, so a subscription that
//! drops (Redis restarted, the connection cut, a ping unanswered) means invalidations may have
//! been missed: the instance stops serving from its cache at once, and serves from it again only
//! after it has resubscribed and emptied it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

use super::{Inner, ProductChange};
use crate::metrics;

/// The pub/sub channel every instance of a deployment shares.
pub(super) const CHANNEL: &str = "tienda:cache:invalidations";
/// How long one publish, connect or ping may take before it counts as failed.
const ROUND_TRIP: Duration = Duration::from_secs(1);
/// How often the subscription is pinged: a cut that closes no connection is seen within this
/// plus [`ROUND_TRIP`].
const PING_EVERY: Duration = Duration::from_secs(1);
/// How long a write waits for its publish before answering anyway (and retrying in the
/// background): a Redis that does not answer slows writes by at most this.
const PUBLISH_WAIT: Duration = Duration::from_millis(250);
/// A publish that failed is retried in the background this long (a late invalidation is still
/// one; past the time to live nothing it names is left anyway).
const RETRY_FOR: Duration = Duration::from_secs(60);

/// The Redis side of one instance's cache; cheap to clone.
#[derive(Clone)]
pub(super) struct Channel {
    client: redis::Client,
    /// Tags this instance's messages, so it ignores its own.
    instance: Arc<str>,
    /// Connected on first use, then reconnecting by itself.
    publisher: Arc<OnceCell<ConnectionManager>>,
}

impl Channel {
    pub(super) fn new(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Channel {
            client: redis::Client::open(url)?,
            instance: uuid::Uuid::new_v4().simple().to_string().into(),
            publisher: Arc::new(OnceCell::new()),
        })
    }

    /// Publishes `change` for the other instances; when Redis does not answer, logs it and
    /// keeps trying in the background, never failing the write.
    pub(super) async fn publish(&self, change: &ProductChange) {
        let message = encode(&self.instance, change);
        if let Err(error) = self.try_publish(&message).await {
            tracing::warn!(%error, "cannot publish a cache invalidation; retrying in the background");
            let channel = self.clone();
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let mut wait = Duration::from_millis(100);
                while started.elapsed() < RETRY_FOR {
                    tokio::time::sleep(wait).await;
                    if channel.try_publish(&message).await.is_ok() {
                        tracing::info!("cache invalidation published after a retry");
                        return;
                    }
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            });
        }
    }

    async fn try_publish(&self, message: &str) -> Result<(), String> {
        let publish = async {
            let connection = self
                .publisher
                .get_or_try_init(|| {
                    let config = redis::aio::ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(PUBLISH_WAIT))
                        .set_response_timeout(Some(PUBLISH_WAIT))
                        .set_number_of_retries(1);
                    ConnectionManager::new_with_config(self.client.clone(), config)
                })
                .await
                .map_err(|e| e.to_string())?;
            let mut connection = connection.clone();
            redis::cmd("PUBLISH")
                .arg(CHANNEL)
                .arg(message)
                .query_async::<i64>(&mut connection)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(PUBLISH_WAIT, publish).await {
            Ok(result) => result,
            Err(_) => Err("timed out".into()),
        }
    }
}

/// `<instance> *` or `<instance> <id>,<id>,...`.
fn encode(instance: &str, change: &ProductChange) -> String {
    match change {
        ProductChange::All => format!("{instance} *"),
        ProductChange::Products(ids) => {
            let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
            format!("{instance} {}", ids.join(","))
        }
    }
}

/// The change another instance published; `None` for this instance's own. Anything unreadable
/// empties the whole cache, the safe reading.
pub(super) fn decode(own: &str, message: &str) -> Option<ProductChange> {
    let (instance, payload) = message.split_once(' ').unwrap_or(("", message));
    if instance == own {
        return None;
    }
    if payload.is_empty() {
        return Some(ProductChange::Products(Vec::new()));
    }
    let ids: Result<Vec<i64>, _> = payload.split(',').map(str::parse).collect();
    Some(ids.map_or(ProductChange::All, ProductChange::Products))
}

/// Keeps the subscription up for as long as the cache lives: subscribe, empty the cache, serve
/// from it while every message and ping gets through; on any failure, bypass and start over.
pub(super) async fn subscribe(cache: Weak<Inner>) {
    let mut wait = Duration::from_millis(50);
    let mut failures = 0u32;
    loop {
        let Some(channel) = cache.upgrade().and_then(|inner| inner.channel.clone()) else {
            return;
        };
        let connected = tokio::time::timeout(ROUND_TRIP * 3, async {
            let mut pubsub = channel.client.get_async_pubsub().await?;
            pubsub.subscribe(CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        let pubsub = match connected {
            Ok(Ok(pubsub)) => pubsub,
            failed => {
                if failures == 0 {
                    let error = match failed {
                        Ok(Err(error)) => error.to_string(),
                        _ => "timed out".to_owned(),
                    };
                    tracing::warn!(%error, "cannot subscribe to the cache channel; the cache is bypassed until it can");
                }
                failures += 1;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Some(inner) = cache.upgrade() else { return };
        // Whatever was published while away is lost: everything goes before serving again.
        inner.apply(&ProductChange::All).await;
        inner.serving.store(true, std::sync::atomic::Ordering::SeqCst);
        metrics::dependency("cache_channel", true);
        tracing::info!(
            channel = CHANNEL,
            "cache channel subscribed; the cache is emptied and serves again"
        );
        drop(inner);
        (wait, failures) = (Duration::from_millis(50), 0);
        let reason = listen(&cache, pubsub, &channel.instance).await;
        let Some(inner) = cache.upgrade() else { return };
        inner.serving.store(false, std::sync::atomic::Ordering::SeqCst);
        metrics::dependency("cache_channel", false);
        tracing::warn!(
            reason,
            "cache channel lost; the cache is bypassed until resubscribed and emptied"
        );
    }
}

/// Applies other instances' messages until the subscription fails; returns why.
async fn listen(cache: &Weak<Inner>, pubsub: redis::aio::PubSub, own: &str) -> &'static str {
    let (mut sink, mut stream) = pubsub.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else { return "connection closed" };
                let Some(inner) = cache.upgrade() else { return "cache dropped" };
                let payload: String = message.get_payload().unwrap_or_default();
                if let Some(change) = decode(own, &payload) {
                    inner.apply(&change).await;
                    metrics::cache_invalidation("remote");
                }
            }
            _ = ping.tick() => {
                let pong = tokio::time::timeout(ROUND_TRIP, sink.ping::<redis::Value>()).await;
                if !matches!(pong, Ok(Ok(_))) {
                    return "ping unanswered";
                }
            }
        }
    }
}
