//! `/api/v1/products/{id}/stock-adjustments`: change stock atomically, read the ledger.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use tracing::instrument;

use crate::domain::inventory::Adjustment;
use crate::http::caller::RequireStaff;
use crate::http::dto::inventory::{AdjustmentResponse, parse_adjustment};
use crate::http::error::ApiError;
use crate::http::extract::ResourceId;
use crate::http::idempotency::{IdempotencyContext, respond, stored_json};
use crate::http::json_body::JsonObject;
use crate::http::pagination::{PageBody, parse_offset_query};
use crate::state::AppState;
use crate::store::idempotency::StoredResponse;

/// An applied adjustment as answered and kept for idempotent replay.
fn render(adjustment: &Adjustment) -> Result<StoredResponse, serde_json::Error> {
    stored_json(
        StatusCode::CREATED,
        &AdjustmentResponse::from(adjustment.clone()),
        &[],
    )
}

/// Adjust the stock of a product, writing a ledger row.
///
/// Adds `delta` (negative to take stock out) atomically and appends a ledger row; the
/// product's `version` goes up by one. Taking the stock below 0 is 409 `/problems/insufficient-stock`
/// and above 2147483647 is 409 `/problems/stock-limit`; nothing changes then. Staff or admin.
/// Send an `Idempotency-Key` to make a retry safe.
#[utoipa::path(post, path = "/api/v1/products/{id}/stock-adjustments", tag = "inventory",
    extensions(("x-problems" = json!([400,401,403,404,409,413,415,422,429]))),
    request_body = crate::http::openapi::schemas::StockAdjustmentRequest,
    params(("id" = i64, Path, description = "The product id", minimum = 1), crate::http::openapi::IdempotencyParams),
    responses((status = 201, description = "Applied", body = AdjustmentResponse)),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(product_id = id.0))]
pub async fn adjust_stock(
    RequireStaff(user): RequireStaff,
    State(state): State<AppState>,
    id: ResourceId,
    idempotency: Option<axum::Extension<IdempotencyContext>>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let (delta, reason) = parse_adjustment(body)?;
    respond(idempotency, render, |completion| async move {
        let adjustment = state
            .store
            .adjust_stock(id.0, delta, &reason, Some(user.id), completion)
            .await?;
        crate::metrics::stock_adjusted(adjustment.delta);
        Ok(adjustment)
    })
    .await
}

/// An offset page of the ledger.
pub type LedgerPage = PageBody<AdjustmentResponse>;

/// List the stock ledger of a product, newest first.
///
/// Offset pages (`page`, `per_page`) of the product's adjustments, its initial stock
/// first in time; the stock equals the sum of the ledger. Staff or admin.
#[utoipa::path(get, path = "/api/v1/products/{id}/stock-adjustments", tag = "inventory",
    extensions(("x-problems" = json!([400,401,403,404]))),
    params(("id" = i64, Path, description = "The product id", minimum = 1), crate::http::openapi::PageParams),
    responses((status = 200, description = "The ledger, newest first", body = LedgerPage)),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(product_id = id.0))]
pub async fn list_stock_adjustments(
    _staff: RequireStaff,
    State(state): State<AppState>,
    id: ResourceId,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let page = parse_offset_query(query.as_deref())?;
    let (rows, total) = state
        .store
        .list_ledger(id.0, page.per_page, page.offset())
        .await?;
    let body = LedgerPage::new(
        rows.into_iter().map(AdjustmentResponse::from).collect(),
        page,
        total,
    );
    Ok(body.answer(&format!("/api/v1/products/{}/stock-adjustments", id.0)))
}
