//! `/api/v1/products`: thin handlers from DTOs to the store and back.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::instrument;

use crate::cache::Answer;
use crate::domain::etag::{self, Precondition};
use crate::domain::listing::{ListQuery, Page};
use crate::domain::product::Product;
use crate::http::cached;
use crate::http::caller::{ReadAccess, RequireStaff};
use crate::http::dto::product::{ProductResponse, parse_draft, parse_patch};
use crate::http::error::ApiError;
use crate::http::extract::{IfNoneMatch, ResourceId};
use crate::http::idempotency::{IdempotencyContext, respond, stored_json};
use crate::http::json_body::JsonObject;
use crate::http::list_query;
use crate::http::pagination::{OffsetPage, PageBody, link, offset_links};
use crate::store::idempotency::StoredResponse;

const PRODUCTS_PATH: &str = "/api/v1/products";
use crate::state::AppState;

/// A created product as answered and kept for idempotent replay: JSON with its `ETag` and
/// `Location`.
fn render_created(product: &Product) -> Result<StoredResponse, serde_json::Error> {
    stored_json(
        StatusCode::CREATED,
        &ProductResponse::from(product.clone()),
        &[
            ("etag", etag::for_version(product.version)),
            ("location", format!("{PRODUCTS_PATH}/{}", product.id)),
        ],
    )
}

/// A product answer sent directly (reads and updates, which are never replayed): JSON with its
/// `ETag`, without the round trip through the stored form.
fn product_response(status: StatusCode, product: Product) -> Response {
    let etag = HeaderValue::from_str(&etag::for_version(product.version));
    let mut response = (status, Json(ProductResponse::from(product))).into_response();
    if let Ok(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// Create a product.
///
/// Staff or admin. `price` is exact: a JSON number or a string with at most two decimals.
/// Answers 201 with the product, its `ETag` and `Location`. Send an `Idempotency-Key` to make a
/// retry safe.
#[utoipa::path(post, path = "/api/v1/products", tag = "products",
    extensions(("x-problems" = json!([400,401,403,409,413,415,422,429]))),
    request_body = crate::http::openapi::schemas::ProductWriteRequest,
    params(crate::http::openapi::IdempotencyParams),
    responses((status = 201, description = "Created", body = ProductResponse)),
    security(("bearer" = [])))]
#[instrument(skip_all)]
pub async fn create_product(
    RequireStaff(user): RequireStaff,
    State(state): State<AppState>,
    idempotency: Option<axum::Extension<IdempotencyContext>>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let draft = parse_draft(body)?;
    respond(idempotency, render_created, |completion| {
        state.store.create_product(&draft, Some(user.id), completion)
    })
    .await
}

/// Read a product.
///
/// Public unless the server runs with `TIENDA_PROTECT_READS=true`, which makes a
/// bearer token required. Send `If-None-Match` with an ETag you hold to get a 304 while it is
/// current.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "products",
    extensions(("x-problems" = json!([401,404]))),
    params(("id" = i64, Path, description = "The product id", minimum = 1), ("If-None-Match" = Option<String>, Header, description = "An ETag you hold: 304 when it is still current")),
    responses((status = 200, description = "The product", body = ProductResponse),
        (status = 304, description = "Not modified: the ETag you sent is current")),
    security((), ("bearer" = [])))]
#[instrument(skip_all, fields(product_id = id.0))]
pub async fn get_product(
    _access: ReadAccess,
    State(state): State<AppState>,
    id: ResourceId,
    IfNoneMatch(if_none_match): IfNoneMatch,
) -> Result<Response, ApiError> {
    let (answer, lookup) = state
        .cache
        .product(id.0, || async {
            let product = state.store.get_product(id.0).await?;
            let tag = etag::for_version(product.version);
            cached::render(&ProductResponse::from(product), Some(&tag), None)
        })
        .await?;
    Ok(cached::respond(&answer, lookup, if_none_match.as_deref()))
}

/// Replace a product.
///
/// Every writable field is sent; an absent `description` or `sku` is cleared. Staff or
/// admin. With `If-Match`, the change applies only if the product's ETag still matches (else 412
/// and nothing changes).
#[utoipa::path(put, path = "/api/v1/products/{id}", tag = "products",
    extensions(("x-problems" = json!([400,401,403,404,409,412,413,415,422]))),
    request_body = crate::http::openapi::schemas::ProductWriteRequest,
    params(("id" = i64, Path, description = "The product id", minimum = 1), crate::http::openapi::IfMatchParams),
    responses((status = 200, description = "Replaced", body = ProductResponse)),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(product_id = id.0))]
pub async fn replace_product(
    RequireStaff(user): RequireStaff,
    State(state): State<AppState>,
    id: ResourceId,
    precondition: Precondition,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let draft = parse_draft(body)?;
    let product = state
        .store
        .update_product(id.0, &precondition, Some(user.id), |_| draft)
        .await?;
    Ok(product_response(StatusCode::OK, product))
}

/// Change some fields of a product (JSON merge patch).
///
/// RFC 7396: absent fields stay as they are, `null` clears `description` or `sku`.
/// Staff or admin. With `If-Match`, the change applies only if the product's ETag still matches
/// (else 412 and nothing changes).
#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "products",
    extensions(("x-problems" = json!([400,401,403,404,409,412,413,415,422]))),
    request_body(content(
        (crate::http::openapi::schemas::ProductPatchRequest = "application/merge-patch+json"),
        (crate::http::openapi::schemas::ProductPatchRequest = "application/json"))),
    params(("id" = i64, Path, description = "The product id", minimum = 1), crate::http::openapi::IfMatchParams),
    responses((status = 200, description = "Patched", body = ProductResponse)),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(product_id = id.0))]
pub async fn patch_product(
    RequireStaff(user): RequireStaff,
    State(state): State<AppState>,
    id: ResourceId,
    precondition: Precondition,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let patch = parse_patch(body)?;
    let product = state
        .store
        .update_product(id.0, &precondition, Some(user.id), |current| {
            patch.apply_to(current)
        })
        .await?;
    Ok(product_response(StatusCode::OK, product))
}

/// Delete a product and its ledger.
///
/// Staff or admin. With `If-Match`, the product is deleted only if its ETag still
/// matches (else 412).
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "products",
    extensions(("x-problems" = json!([401,403,404,412]))),
    params(("id" = i64, Path, description = "The product id", minimum = 1), crate::http::openapi::IfMatchParams),
    responses((status = 204, description = "Deleted, with its ledger")),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(product_id = id.0))]
pub async fn delete_product(
    _staff: RequireStaff,
    State(state): State<AppState>,
    id: ResourceId,
    precondition: Precondition,
) -> Result<StatusCode, ApiError> {
    state.store.delete_product(id.0, &precondition).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An offset page of products.
pub type ProductPage = PageBody<ProductResponse>;

/// A keyset page.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProductCursorPage {
    items: Vec<ProductResponse>,
    /// The cursor of the next page; `null` on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// List products: filtered, searched, sorted, paged by offset or cursor.
///
/// Two paging styles that exclude each other: offset pages (`page`, `per_page`; the body
/// has `total` and `total_pages`) or keyset pages (`limit`, then the previous page's
/// `next_cursor` as `cursor`; the cursor carries the sort and the filters, which may be repeated
/// but not changed). Mixing the two styles is 400 `/problems/invalid-parameter`. Filters: `q`
/// (full-text), `min_price`, `max_price`, `in_stock`; `sort` by one key, `-` for descending. Public
/// unless the server runs with `TIENDA_PROTECT_READS=true`, which makes a bearer token required.
#[utoipa::path(get, path = "/api/v1/products", tag = "products",
    extensions(("x-problems" = json!([400,401]))),
    params(crate::http::openapi::ListParams),
    responses((status = 200, description = "An offset page (page/per_page) or a keyset page (limit/cursor)",
        body = crate::http::openapi::ProductListing)),
    security((), ("bearer" = [])))]
#[instrument(skip_all)]
pub async fn list_products(
    _access: ReadAccess,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).map_err(|_| ApiError::MalformedQuery)?;
    let query = list_query::parse(&pairs, &state.cursors)?;
    // The parsed query is the key: parameter order, spelling and defaults are gone from it, and
    // the answer depends on nothing else.
    let (answer, lookup) = state
        .cache
        .listing(format!("{query:?}"), || render_listing(&state, &query))
        .await?;
    Ok(cached::respond(&answer, lookup, None))
}

/// A listing page from the database, rendered with its `Link`.
async fn render_listing(state: &AppState, query: &ListQuery) -> Result<Answer, ApiError> {
    // A relevance search costs far more than a filtered page: only so many run at once, and one
    // that cannot start within a second is turned away (503) instead of piling up.
    let _search_slot = match &query.filters.q {
        Some(_) => Some(state.searches.enter().await?),
        None => None,
    };
    let listed = state.store.list_products(query).await?;
    let items: Vec<ProductResponse> = listed.items.into_iter().map(ProductResponse::from).collect();
    let explicit_sort = query.sort != ListQuery::effective_sort(&query.filters, None);
    let base = list_query::filter_query(&query.filters, query.sort, explicit_sort);
    match query.page {
        Page::Offset { page, per_page } => {
            let at = OffsetPage { page, per_page };
            let body = ProductPage::new(items, at, listed.total.unwrap_or_default());
            let links = offset_links(PRODUCTS_PATH, &base, at, body.total_pages());
            cached::render(&body, None, Some(&links))
        }
        Page::Keyset { limit, .. } => {
            let next_cursor = listed
                .next
                .map(|after| state.cursors.encode(query.sort, &query.filters, limit, after));
            let links = next_cursor.as_ref().map(|cursor| {
                link(
                    PRODUCTS_PATH,
                    &[("cursor", cursor.clone()), ("limit", limit.to_string())],
                    "next",
                )
            });
            cached::render(&ProductCursorPage { items, next_cursor }, None, links.as_deref())
        }
    }
}
