//! `/api/v1/products/{id}/stock-adjustments`: change stock atomically, read the ledger.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::instrument;

use crate::domain::idempotency::StoredResponse;
use crate::domain::inventory::Adjustment;
use crate::http::auth::RequireStaff;
use crate::http::dto::inventory::{AdjustmentResponse, parse_adjustment};
use crate::http::error::ApiError;
use crate::http::extract::ResourceId;
use crate::http::idempotency::{CompletedInTransaction, IdempotencyContext, into_response, stored};
use crate::http::json_body::JsonObject;
use crate::http::pagination::{offset_links, parse_offset_query, with_links};
use crate::state::AppState;

fn render(adjustment: &Adjustment) -> StoredResponse {
    let body = serde_json::to_vec(&AdjustmentResponse::from(adjustment.clone())).unwrap_or_default();
    let headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    stored(StatusCode::CREATED, headers, body)
}

#[utoipa::path(post, path = "/api/v1/products/{id}/stock-adjustments", tag = "inventory",
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
    let completion = idempotency.as_ref().map(|ctx| ctx.completion(&render));
    let adjustment = state
        .store
        .adjust_stock(id.0, delta, &reason, Some(user.id), completion)
        .await?;
    crate::observability::stock_adjusted(adjustment.delta);
    let mut response = into_response(render(&adjustment));
    if idempotency.is_some() {
        response.extensions_mut().insert(CompletedInTransaction);
    }
    Ok(response)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LedgerPage {
    items: Vec<AdjustmentResponse>,
    page: u64,
    per_page: u64,
    total: u64,
    total_pages: u64,
}

#[utoipa::path(get, path = "/api/v1/products/{id}/stock-adjustments", tag = "inventory",
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
    let total_pages = total.div_ceil(page.per_page);
    let path = format!("/api/v1/products/{}/stock-adjustments", id.0);
    let links = offset_links(&path, &[], page, total_pages);
    let response = Json(LedgerPage {
        items: rows.into_iter().map(AdjustmentResponse::from).collect(),
        page: page.page,
        per_page: page.per_page,
        total,
        total_pages,
    })
    .into_response();
    Ok(with_links(response, &links))
}
