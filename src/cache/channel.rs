//! Invalidations shared between instances over Redis pub/sub (`TIENDA_CACHE=redis`).
//!
//! Each instance publishes what its writes changed, tagged with its own id, and applies what the
//! others publish. Pub/sub keeps nothing for a subscriber that is away, so a subscription that
//! drops (Redis restarted, the connection cut, a ping unanswered) means invalidations may have
//! been missed: the instance stops serving from its cache at once, and serves from it again only
//! after it has resubscribed and emptied it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::{OnceCell, oneshot};

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

/// The most product ids one message names; a merged change past it is sent as "everything"
/// (the others empty their caches: the safe reading, and a message that stays small).
const MAX_IDS: usize = 1_000;

/// The Redis side of one instance's cache; cheap to clone.
#[derive(Clone)]
pub(super) struct Channel {
    client: redis::Client,
    /// Tags this instance's messages, so it ignores its own.
    instance: Arc<str>,
    /// Connected on first use, then reconnecting by itself.
    publisher: Arc<OnceCell<ConnectionManager>>,
    /// What the next PUBLISH carries, and the writes waiting for it.
    outbox: Arc<Mutex<Outbox>>,
}

/// The changes committed since the PUBLISH in flight left, merged into one, like a group
/// commit: while one message is on its way, the writes that commit meanwhile wait for the next,
/// which names all of them. Under load that is one round trip to Redis, and one message for
/// every other instance (and back to this one) to handle, for many writes instead of one each.
#[derive(Default)]
struct Outbox {
    change: Option<ProductChange>,
    waiting: Vec<oneshot::Sender<()>>,
    /// A task is publishing (and will take what is here next).
    flushing: bool,
}

impl Channel {
    pub(super) fn new(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Channel {
            client: redis::Client::open(url)?,
            instance: uuid::Uuid::new_v4().simple().to_string().into(),
            publisher: Arc::new(OnceCell::new()),
            outbox: Arc::new(Mutex::new(Outbox::default())),
        })
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        // The lock guards plain data and no code panics holding it; a poisoned one is still whole.
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes `change` for the other instances and returns once a PUBLISH carrying it was
    /// answered, or after [`PUBLISH_WAIT`]: when Redis does not answer, it is logged and retried
    /// in the background, never failing the write.
    pub(super) async fn publish(&self, change: ProductChange) {
        let (done, published) = oneshot::channel();
        let start = {
            let mut outbox = self.outbox();
            outbox.change = Some(merge(outbox.change.take(), change));
            outbox.waiting.push(done);
            !std::mem::replace(&mut outbox.flushing, true)
        };
        if start {
            tokio::spawn(self.clone().flush());
        }
        let _ = tokio::time::timeout(PUBLISH_WAIT, published).await;
    }

    /// Publishes what the outbox holds until it is empty.
    async fn flush(self) {
        loop {
            let (change, waiting) = {
                let mut outbox = self.outbox();
                let Some(change) = outbox.change.take() else {
                    outbox.flushing = false;
                    return;
                };
                (change, std::mem::take(&mut outbox.waiting))
            };
            let message = encode(&self.instance, &change);
            if let Err(error) = self.try_publish(&message).await {
                tracing::warn!(%error, "cannot publish a cache invalidation; retrying in the background");
                let channel = self.clone();
                tokio::spawn(async move { channel.retry(message).await });
            }
            for done in waiting {
                let _ = done.send(());
            }
        }
    }

    async fn retry(&self, message: String) {
        let started = tokio::time::Instant::now();
        let mut wait = Duration::from_millis(100);
        while started.elapsed() < RETRY_FOR {
            tokio::time::sleep(wait).await;
            if self.try_publish(&message).await.is_ok() {
                tracing::info!("cache invalidation published after a retry");
                return;
            }
            wait = (wait * 2).min(Duration::from_secs(2));
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

/// `pending` and `change` as one change.
pub(super) fn merge(pending: Option<ProductChange>, change: ProductChange) -> ProductChange {
    match (pending, change) {
        (None, change) => change,
        (Some(ProductChange::All), _) | (_, ProductChange::All) => ProductChange::All,
        (Some(ProductChange::Products(mut ids)), ProductChange::Products(more)) => {
            ids.extend(more);
            ids.sort_unstable();
            ids.dedup();
            if ids.len() > MAX_IDS {
                ProductChange::All
            } else {
                ProductChange::Products(ids)
            }
        }
    }
}

/// `<instance> *` or `<instance> <id>,<id>,...`.
pub(super) fn encode(instance: &str, change: &ProductChange) -> String {
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
