//! What every handler can reach; cheap to clone.

use std::sync::Arc;

use crate::config::Config;
use crate::domain::cursor::CursorCodec;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    /// Signs listing cursors with a key derived from the server secret.
    pub cursors: CursorCodec,
}
