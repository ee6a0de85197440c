//! `/api/v1/products`: thin handlers from DTOs to the store and back.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::instrument;

use crate::domain::etag::{self, Precondition};
use crate::domain::product::Product;
use crate::http::dto::product::{ProductResponse, parse_draft, parse_patch};
use crate::http::error::ApiError;
use crate::http::extract::{IfNoneMatch, ResourceId};
use crate::http::json_body::JsonObject;
use crate::state::AppState;

/// A product with its `ETag`, as every single-product answer carries it.
fn product_response(status: StatusCode, product: Product) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(tag) = HeaderValue::from_str(&etag::for_version(product.version)) {
        headers.insert(header::ETAG, tag);
    }
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&format!("/api/v1/products/{}", product.id))
    {
        headers.insert(header::LOCATION, location);
    }
    (status, headers, Json(ProductResponse::from(product))).into_response()
}

#[instrument(skip_all)]
pub async fn create_product(State(state): State<AppState>, body: JsonObject) -> Result<Response, ApiError> {
    let draft = parse_draft(body)?;
    let product = state.store.create_product(&draft, None).await?;
    Ok(product_response(StatusCode::CREATED, product))
}

#[instrument(skip_all, fields(product_id = id.0))]
pub async fn get_product(
    State(state): State<AppState>,
    id: ResourceId,
    IfNoneMatch(if_none_match): IfNoneMatch,
) -> Result<Response, ApiError> {
    let product = state.store.get_product(id.0).await?;
    let tag = etag::for_version(product.version);
    if if_none_match.is_some_and(|header| etag::matches(&header, &tag, true)) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(tag) = HeaderValue::from_str(&tag) {
            response.headers_mut().insert(header::ETAG, tag);
        }
        return Ok(response);
    }
    Ok(product_response(StatusCode::OK, product))
}

#[instrument(skip_all, fields(product_id = id.0))]
pub async fn replace_product(
    State(state): State<AppState>,
    id: ResourceId,
    precondition: Precondition,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let draft = parse_draft(body)?;
    let product = state
        .store
        .update_product(id.0, &precondition, None, |_| draft)
        .await?;
    Ok(product_response(StatusCode::OK, product))
}

#[instrument(skip_all, fields(product_id = id.0))]
pub async fn patch_product(
    State(state): State<AppState>,
    id: ResourceId,
    precondition: Precondition,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let patch = parse_patch(body)?;
    let product = state
        .store
        .update_product(id.0, &precondition, None, |current| patch.apply_to(current))
        .await?;
    Ok(product_response(StatusCode::OK, product))
}

#[instrument(skip_all, fields(product_id = id.0))]
pub async fn delete_product(
    State(state): State<AppState>,
    id: ResourceId,
    precondition: Precondition,
) -> Result<StatusCode, ApiError> {
    state.store.delete_product(id.0, &precondition).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct ProductPage {
    items: Vec<ProductResponse>,
    page: u64,
    per_page: u64,
    total: u64,
    total_pages: u64,
}

#[instrument(skip_all)]
pub async fn list_products(
    State(state): State<AppState>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Json<ProductPage>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|_| ApiError::InvalidQuery(vec![]))?;
    let mut page = 1u64;
    let mut per_page = 20u64;
    let mut errors = Vec::new();
    for (key, value) in pairs {
        let bad = |code, message: &str| crate::http::error::FieldError {
            field: key.clone(),
            code,
            message: message.to_owned(),
        };
        match key.as_str() {
            "page" => match value.parse::<u64>() {
                Ok(n) if n >= 1 => page = n,
                _ => errors.push(bad("invalid", "must be an integer >= 1")),
            },
            "per_page" => match value.parse::<u64>() {
                Ok(n) if (1..=100).contains(&n) => per_page = n,
                _ => errors.push(bad("invalid", "must be an integer in 1..=100")),
            },
            _ => errors.push(bad("unknown_parameter", "is not a parameter of this resource")),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    let (products, total) = state.store.list_products_page(page, per_page).await?;
    Ok(Json(ProductPage {
        items: products.into_iter().map(ProductResponse::from).collect(),
        page,
        per_page,
        total,
        total_pages: total.div_ceil(per_page),
    }))
}
