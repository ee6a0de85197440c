//! Stock adjustments as JSON.

use serde::Serialize;

use crate::domain::inventory::{Adjustment, Delta, Reason};
use crate::http::dto::product::rfc3339;
use crate::http::error::{ApiError, FieldErrors};
use crate::http::json_body::{Fields, JsonObject, decode};

/// `{"delta", "reason"}`.
pub fn parse_adjustment(body: JsonObject) -> Result<(Delta, Reason), ApiError> {
    let mut fields = Fields::new(body);
    let delta = fields.required("delta", |raw| Delta::new(decode::integer(raw)?));
    let reason = fields.required("reason", |raw| Reason::parse(&decode::string(raw)?));
    fields.finish(&["id", "product_id", "stock_after", "actor", "created_at"])?;
    match (delta, reason) {
        (Some(delta), Some(reason)) => Ok((delta, reason)),
        _ => Err(ApiError::Validation(FieldErrors::default())),
    }
}

/// A ledger row.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 7, "product_id": 42, "delta": -3, "stock_after": 9, "reason": "order 1001", "actor": 1, "created_at": "2026-11-29T10:05:00Z"}))]
pub struct AdjustmentResponse {
    pub id: i64,
    pub product_id: i64,
    pub delta: i64,
    pub stock_after: i64,
    pub reason: String,
    /// The id of the user who made the change.
    pub actor: Option<i64>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl crate::http::pagination::PageItem for AdjustmentResponse {
    const PAGE_NAME: &'static str = "LedgerPage";
}

impl From<Adjustment> for AdjustmentResponse {
    fn from(a: Adjustment) -> Self {
        AdjustmentResponse {
            id: a.id,
            product_id: a.product_id,
            delta: a.delta,
            stock_after: a.stock_after,
            reason: a.reason,
            actor: a.actor,
            created_at: rfc3339(a.created_at),
        }
    }
}
