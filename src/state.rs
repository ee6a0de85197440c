//! What every handler can reach; cheap to clone.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use redis::aio::ConnectionManager;

use crate::cache::Cache;
use crate::config::Config;
use crate::domain::cursor::CursorCodec;
use crate::limits::Gate;
use crate::services::accounts::AuthService;
use crate::store::Store;

/// Cloned for every request (axum's `State`), so a clone is one reference count.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// State around what is shared.
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What every request shares: configuration, store, services and gates.
pub struct Shared {
    /// The database.
    pub store: Store,
    /// The settings.
    pub config: Arc<Config>,
    /// Signs listing cursors with a key derived from the server secret.
    pub cursors: CursorCodec,
    /// Bounds the relevance searches running at once (`TIENDA_SEARCH_CONCURRENCY`).
    pub searches: Gate,
    /// Accounts and sessions.
    pub auth: AuthService,
    /// The response cache (`Cache::off()` when `TIENDA_CACHE` resolves to off).
    pub cache: Cache,
    /// The shared Redis, when `REDIS_URL` is set.
    pub redis: Option<ConnectionManager>,
    /// Set on a shutdown signal: readiness answers 503 while the listener still accepts, for
    /// `TIENDA_SHUTDOWN_DRAIN_SECS`.
    pub draining: Arc<AtomicBool>,
    /// Set when the listener closes: every answer closes its connection.
    pub closing: Arc<AtomicBool>,
}
