//! What crosses the wire: request parsing into domain types and response shapes.

pub mod inventory;
pub mod job;
pub mod product;
pub mod user;
pub mod webhook;

/// How the store renders event data: the same shapes the API answers with.
pub fn event_shapes() -> crate::store::outbox::EventShapes {
    crate::store::outbox::EventShapes {
        product: |product| {
            serde_json::to_value(product::ProductResponse::from(product.clone())).unwrap_or_default()
        },
        adjustment: |adjustment, version| {
            let mut value = serde_json::to_value(inventory::AdjustmentResponse::from(adjustment.clone()))
                .unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert("version".to_owned(), version.into());
            }
            value
        },
        job: |job| serde_json::to_value(job::JobResponse::from(job.clone())).unwrap_or_default(),
    }
}
