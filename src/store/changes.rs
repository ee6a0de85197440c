//! Who hears of committed product writes: the response cache. Every store method that writes
//! products tells the listener after its commit and before it returns, so a write's answer
//! never leaves before the cache has dropped what it changed.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{Store, StoreError};

/// What a committed write changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductChange {
    /// These products (and so every listing page). An empty list changes listing pages only
    /// (a product created whose id is unknown).
    Products(Vec<i64>),
    /// Anything: a bulk write (an import), or a cache that lost track.
    All,
}

/// Hears of committed product writes.
pub trait ChangeListener: Send + Sync + 'static {
    /// Called after the commit, awaited before the write returns; must not fail.
    fn products_changed(&self, change: ProductChange) -> BoxFuture<'_, ()>;
}

/// The store's listener, when one is attached.
#[derive(Clone, Default)]
pub(crate) struct Listener(Option<Arc<dyn ChangeListener>>);

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Listener(attached)"
        } else {
            "Listener(none)"
        })
    }
}

impl Store {
    /// This store, telling `listener` of every product write it commits.
    pub fn with_listener(mut self, listener: Arc<dyn ChangeListener>) -> Self {
        self.listener = Listener(Some(listener));
        self
    }

    /// **The invalidation hook**: tells the listener (the response cache) that `change` has
    /// committed. The product writes here call it themselves; a write that commits products
    /// some other way (a bulk import) calls it after each commit, before it reports success.
    pub async fn products_changed(&self, change: ProductChange) {
        if let Some(listener) = &self.listener.0 {
            listener.products_changed(change).await;
        }
    }

    /// Tells the listener what a product write changed: the products `changed` names when it
    /// committed, `fallback` when its outcome is unknown (an error at or after the commit may
    /// hide a commit), nothing when it certainly wrote nothing.
    pub(crate) async fn after_product_write<T>(
        &self,
        result: Result<T, StoreError>,
        changed: impl FnOnce(&T) -> Vec<i64>,
        fallback: Vec<i64>,
    ) -> Result<T, StoreError> {
        let change = match &result {
            Ok(value) => Some(changed(value)),
            Err(StoreError::Unavailable(_) | StoreError::Database(_)) => Some(fallback),
            Err(_) => None,
        };
        if let Some(ids) = change {
            self.products_changed(ProductChange::Products(ids)).await;
        }
        result
    }
}
