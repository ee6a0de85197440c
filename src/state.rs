//! What every handler can reach; cheap to clone.

use std::sync::Arc;

use redis::aio::ConnectionManager;

use crate::config::Config;
use crate::domain::cursor::CursorCodec;
use crate::services::auth::AuthService;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    /// Signs listing cursors with a key derived from the server secret.
    pub cursors: CursorCodec,
    pub auth: AuthService,
    /// The shared Redis, when `REDIS_URL` is set.
    pub redis: Option<ConnectionManager>,
}
