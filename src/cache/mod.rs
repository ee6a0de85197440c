//! The response cache: rendered answers of `GET /api/v1/products/{id}` and of listing pages,
//! in process (moka, bounded in bytes, with a time to live), emptied of what a committed
//! product write changed before the write's answer leaves, and across instances over Redis
//! (`channel.rs`).
//!
//! Freshness rests on epochs, not on removing entries alone. Every key carries the epoch that
//! was current when its read began: a product's key its id and the epoch of its stripe (plus
//! the epoch of "everything"), a listing page's key the listing generation. A write bumps the
//! epochs first and only then removes the old entries, so a read that starts after the write
//! looks under a new key: it neither finds an old entry nor joins a load that began before the
//! write (moka's single-flight is per key). A load that began before the write still finishes
//! under the old key; at insert time it compares the epoch it captured with the current one and,
//! when they differ, answers its own request without storing anything.
//!
//! Listing pages share one generation, bumped by any product change: which pages a product
//! appears on depends on its price, stock, name and on every other product (offsets shift), so
//! finer keys would need the listing's own query planner to say which pages a change touches.
//! Writes are rare next to reads, and a bump costs one miss per page actually read again.

mod channel;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use moka::future::Cache as Moka;

use crate::metrics;
use crate::store::changes::ChangeListener;
pub use crate::store::changes::ProductChange;

/// Which cache runs, `TIENDA_CACHE` resolved at start (`auto` is decided by the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// No cache: every read goes to the database.
    Off,
    /// In process; writes on this instance invalidate it (one instance, or SQLite).
    Local,
    /// In process, with invalidations shared over Redis between instances.
    Redis,
}

/// The cache's settings.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// `TIENDA_CACHE`, resolved.
    pub mode: CacheMode,
    /// `TIENDA_CACHE_TTL_SECS`: no entry lives longer.
    pub ttl: Duration,
    /// `TIENDA_CACHE_MAX_MB`, in bytes: the bound on what the entries weigh.
    pub max_bytes: u64,
}

/// A rendered `200` JSON answer, as sent whether it came from the cache or not.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The JSON body.
    pub body: Bytes,
    /// The `ETag` (product reads).
    pub etag: Option<HeaderValue>,
    /// The `Link` header (listing pages).
    pub link: Option<HeaderValue>,
}

impl Answer {
    /// What the entry costs in the byte bound: its body, headers and bookkeeping.
    fn weight(&self, key_len: usize) -> u32 {
        let headers = [&self.etag, &self.link]
            .iter()
            .map(|h| h.as_ref().map_or(0, |v| v.len()))
            .sum::<usize>();
        (self.body.len() + headers + key_len + 96).min(u32::MAX as usize) as u32
    }
}

/// How a cached route's answer was found: the `Cache-Status` and the metric's `result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// From the cache.
    Hit,
    /// Loaded from the database (and stored, unless a write raced the load).
    Miss,
    /// The cache cannot be trusted right now (its Redis channel is down): loaded, not stored.
    Bypass,
}

impl Lookup {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Lookup::Hit => "hit",
            Lookup::Miss => "miss",
            Lookup::Bypass => "bypass",
        }
    }
}

/// Product entries are keyed by id and the epoch of the id's stripe: a write bumps one stripe,
/// so it makes unreachable only the entries of the products that share it.
const STRIPES: usize = 4096;

/// The epochs keys are made of (see the module's documentation).
struct Epochs {
    all: AtomicU64,
    stripes: Box<[AtomicU64]>,
    listings: AtomicU64,
}

impl Epochs {
    fn new() -> Self {
        Epochs {
            all: AtomicU64::new(0),
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            listings: AtomicU64::new(0),
        }
    }

    fn stripe(&self, id: i64) -> &AtomicU64 {
        &self.stripes[(id as u64 % STRIPES as u64) as usize]
    }

    /// The epoch of a product's key; it only grows, as both parts only grow.
    fn product(&self, id: i64) -> u64 {
        self.all.load(Ordering::SeqCst) + self.stripe(id).load(Ordering::SeqCst)
    }

    fn listings(&self) -> u64 {
        self.listings.load(Ordering::SeqCst)
    }

    fn bump(&self, change: &ProductChange) {
        match change {
            ProductChange::Products(ids) => {
                for id in ids {
                    self.stripe(*id).fetch_add(1, Ordering::SeqCst);
                }
            }
            ProductChange::All => {
                self.all.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.listings.fetch_add(1, Ordering::SeqCst);
    }
}

/// The cache of one instance; cheap to clone. `Cache::off()` caches nothing.
#[derive(Clone, Default)]
pub struct Cache {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("on", &self.inner.is_some())
            .finish()
    }
}

struct Inner {
    products: Moka<(u64, i64), Arc<Answer>>,
    listings: Moka<(u64, String), Arc<Answer>>,
    epochs: Epochs,
    /// False while the entries cannot be trusted (the Redis channel is down, so invalidations
    /// from other instances may be missed): reads bypass the cache until it is back and emptied.
    serving: AtomicBool,
    /// Present in `redis` mode.
    channel: Option<channel::Channel>,
}

/// Why a load's answer was not stored.
enum NotStored {
    /// A write (or a lost channel) came while it loaded: the answer is for its own readers only.
    Raced(Arc<Answer>),
    /// The load failed; the loader kept its error.
    Failed,
}

impl Cache {
    /// No cache.
    pub fn off() -> Self {
        Cache { inner: None }
    }

    /// The cache `settings` ask for. In `redis` mode it needs `redis_url`, and serves from its
    /// entries only once `background` has subscribed.
    pub fn new(settings: &CacheSettings, redis_url: Option<&str>) -> Result<Self, redis::RedisError> {
        let channel = match (settings.mode, redis_url) {
            (CacheMode::Off, _) => return Ok(Cache::off()),
            (CacheMode::Local, _) => None,
            (CacheMode::Redis, Some(url)) => Some(channel::Channel::new(url)?),
            (CacheMode::Redis, None) => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "TIENDA_CACHE=redis needs REDIS_URL",
                )));
            }
        };
        // Half the bound each: listing pages weigh more, product reads are more numerous.
        let half = (settings.max_bytes / 2).max(1);
        let products = Moka::builder()
            .max_capacity(half)
            .weigher(|_: &(u64, i64), answer: &Arc<Answer>| answer.weight(16))
            .time_to_live(settings.ttl)
            .build();
        let listings = Moka::builder()
            .max_capacity(half)
            .weigher(|key: &(u64, String), answer: &Arc<Answer>| answer.weight(8 + key.1.len()))
            .time_to_live(settings.ttl)
            .build();
        let serving = channel.is_none();
        Ok(Cache {
            inner: Some(Arc::new(Inner {
                products,
                listings,
                epochs: Epochs::new(),
                serving: AtomicBool::new(serving),
                channel,
            })),
        })
    }

    /// Whether answers carry `Cache-Status` (the cache is on).
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// The answer to `GET /api/v1/products/{id}`: from the cache, or `load`ed (once for every
    /// reader of the same key at once) and stored. `None` for the lookup when the cache is off.
    pub async fn product<E, Fut>(
        &self,
        id: i64,
        load: impl Fn() -> Fut,
    ) -> Result<(Arc<Answer>, Option<Lookup>), E>
    where
        Fut: Future<Output = Result<Answer, E>>,
    {
        self.read(
            |inner| &inner.products,
            |epochs| epochs.product(id),
            "product",
            id,
            load,
        )
        .await
    }

    /// The cached answer for product `id`, if the cache holds a current one and may serve it
    /// now; nothing is loaded or counted (the hit lane counts the hits it serves).
    pub async fn product_hit(&self, id: i64) -> Option<Arc<Answer>> {
        let inner = self.inner.as_ref()?;
        if !inner.serving.load(Ordering::SeqCst) {
            return None;
        }
        let at = inner.epochs.product(id);
        inner.products.get(&(at, id)).await
    }

    /// A listing page by its normalised query (equal queries, equal text), as [`Cache::product`].
    pub async fn listing<E, Fut>(
        &self,
        normalised: String,
        load: impl Fn() -> Fut,
    ) -> Result<(Arc<Answer>, Option<Lookup>), E>
    where
        Fut: Future<Output = Result<Answer, E>>,
    {
        self.read(
            |inner| &inner.listings,
            Epochs::listings,
            "listing",
            normalised,
            load,
        )
        .await
    }

    /// Looks `item` up under the epoch `epoch` reads now, in the cache `which` picks.
    async fn read<T, E, Fut>(
        &self,
        which: impl FnOnce(&Inner) -> &Moka<(u64, T), Arc<Answer>>,
        epoch: impl Fn(&Epochs) -> u64,
        name: &'static str,
        item: T,
        load: impl Fn() -> Fut,
    ) -> Result<(Arc<Answer>, Option<Lookup>), E>
    where
        T: std::hash::Hash + Eq + Send + Sync + 'static,
        Fut: Future<Output = Result<Answer, E>>,
    {
        let Some(inner) = &self.inner else {
            return Ok((Arc::new(load().await?), None));
        };
        let at = epoch(&inner.epochs);
        let current = || epoch(&inner.epochs) == at;
        inner.lookup(which(inner), (at, item), name, current, load).await
    }

    /// **The invalidation hook.** Call it after a product write has committed and before its
    /// answer leaves: the changed products' entries and every listing page go, here and (in
    /// `redis` mode) on every other instance. The store calls it for every product write it
    /// commits (`Store::products_changed`); a bulk write such as an import passes
    /// [`ProductChange::All`] or the ids it wrote. Never fails: a Redis that does not answer is
    /// logged, retried in the background, and leaves the others bypassing their caches.
    pub async fn invalidate_products(&self, change: ProductChange) {
        let Some(inner) = &self.inner else {
            return;
        };
        inner.apply(&change).await;
        metrics::cache_invalidation("local");
        if let Some(channel) = &inner.channel {
            channel.publish(change).await;
        }
    }

    /// Background work: the entry gauges and, in `redis` mode, the subscription. Aborted at
    /// shutdown.
    pub fn background(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let Some(inner) = &self.inner else {
            return Vec::new();
        };
        metrics::cache_zero();
        let gauges = Arc::downgrade(inner);
        let mut tasks = vec![tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(5));
            loop {
                ticker.tick().await;
                let Some(inner) = gauges.upgrade() else { return };
                metrics::cache_entries("product", inner.products.entry_count());
                metrics::cache_entries("listing", inner.listings.entry_count());
            }
        })];
        if inner.channel.is_some() {
            tasks.push(tokio::spawn(channel::subscribe(Arc::downgrade(inner))));
        }
        tasks
    }

    /// Whether the Redis channel is down (`None` when there is no channel): the readiness
    /// check's `cache` entry.
    pub fn channel_down(&self) -> Option<bool> {
        let inner = self.inner.as_ref()?;
        inner.channel.as_ref()?;
        Some(!inner.serving.load(Ordering::SeqCst))
    }
}

impl Inner {
    async fn lookup<K, E, Fut>(
        &self,
        cache: &Moka<K, Arc<Answer>>,
        key: K,
        name: &'static str,
        current: impl Fn() -> bool,
        load: impl Fn() -> Fut,
    ) -> Result<(Arc<Answer>, Option<Lookup>), E>
    where
        K: std::hash::Hash + Eq + Send + Sync + 'static,
        Fut: Future<Output = Result<Answer, E>>,
    {
        if !self.serving.load(Ordering::SeqCst) {
            metrics::cache_request(name, Lookup::Bypass.as_str());
            return Ok((Arc::new(load().await?), Some(Lookup::Bypass)));
        }
        let mut failure = None;
        let init = async {
            match load().await {
                Ok(answer) => {
                    let answer = Arc::new(answer);
                    // The epoch captured before the load, compared at insert time.
                    if current() && self.serving.load(Ordering::SeqCst) {
                        Ok(answer)
                    } else {
                        Err(NotStored::Raced(answer))
                    }
                }
                Err(error) => {
                    failure = Some(error);
                    Err(NotStored::Failed)
                }
            }
        };
        let outcome = cache.entry(key).or_try_insert_with(init).await;
        let (answer, lookup) = match outcome {
            Ok(entry) if entry.is_fresh() => (entry.into_value(), Lookup::Miss),
            Ok(entry) => (entry.into_value(), Lookup::Hit),
            Err(not_stored) => match (&*not_stored, failure) {
                (_, Some(error)) => return Err(error),
                (NotStored::Raced(answer), None) => (answer.clone(), Lookup::Miss),
                // Another reader's load of this key failed: this one tries for itself.
                (NotStored::Failed, None) => (Arc::new(load().await?), Lookup::Miss),
            },
        };
        metrics::cache_request(name, lookup.as_str());
        Ok((answer, Some(lookup)))
    }

    /// Bumps the epochs, then drops the entries they orphaned: a read that starts once this
    /// returns never sees what was there before.
    async fn apply(&self, change: &ProductChange) {
        match change {
            ProductChange::Products(ids) => {
                let old: Vec<(u64, i64)> = ids.iter().map(|id| (self.epochs.product(*id), *id)).collect();
                self.epochs.bump(change);
                self.listings.invalidate_all();
                // Other ids of the same stripes are unreachable too; they go when they expire
                // or are evicted.
                for key in &old {
                    self.products.invalidate(key).await;
                }
            }
            ProductChange::All => {
                self.epochs.bump(change);
                self.products.invalidate_all();
                self.listings.invalidate_all();
            }
        }
    }
}

impl ChangeListener for Cache {
    fn products_changed(&self, change: ProductChange) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(self.invalidate_products(change))
    }
}
