//! Query and header parameters as the document describes them; the handlers read the same
//! rules from the raw query and headers.

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

/// `page` and `per_page` of plain offset listings.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    /// 1-based page number.
    #[param(minimum = 1, maximum = 10000000)]
    page: Option<u64>,
    /// Items per page.
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u64>,
}

/// The listing's parameters. Offset style (`page`, `per_page`) or keyset style (`limit`,
/// `cursor`), not both.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// 1-based page number (offset style).
    #[param(minimum = 1, maximum = 10000000)]
    page: Option<u64>,
    /// Items per page (offset style).
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u64>,
    /// Items per page (keyset style).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// The `next_cursor` of the previous keyset page; it carries the sort and the filters.
    #[param(min_length = 1, max_length = 4096)]
    cursor: Option<String>,
    /// Full-text search over name, description and sku: every word must match; relevance order
    /// unless `sort` is given. At most 8 distinct words (a repeated word counts once) holding at
    /// most 16 runs of letters or digits in all; more is 400 `too_many_terms`. A search that
    /// cannot start within a second is 503 `/problems/overloaded`.
    #[param(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    q: Option<String>,
    /// Lowest price, inclusive.
    #[param(pattern = r"^((0|[1-9][0-9]{0,8})(\.[0-9]{1,2}0*)?|1000000000(\.0+)?)$")]
    min_price: Option<String>,
    /// Highest price, inclusive; not below `min_price`.
    #[param(pattern = r"^((0|[1-9][0-9]{0,8})(\.[0-9]{1,2}0*)?|1000000000(\.0+)?)$")]
    max_price: Option<String>,
    /// Only products with (true) or without (false) stock.
    in_stock: Option<bool>,
    /// Sort key, `-` for descending; ties break by id in the same direction. Default `id`, or
    /// relevance when `q` is given.
    #[param(inline)]
    sort: Option<SortParam>,
}

/// The values of `sort`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub enum SortParam {
    /// By creation order, ascending.
    #[serde(rename = "id")]
    Id,
    /// By creation order, descending.
    #[serde(rename = "-id")]
    IdDesc,
    /// By name, ascending.
    #[serde(rename = "name")]
    Name,
    /// By name, descending.
    #[serde(rename = "-name")]
    NameDesc,
    /// By price, ascending.
    #[serde(rename = "price")]
    Price,
    /// By price, descending.
    #[serde(rename = "-price")]
    PriceDesc,
    /// By units in stock, ascending.
    #[serde(rename = "stock")]
    Stock,
    /// By units in stock, descending.
    #[serde(rename = "-stock")]
    StockDesc,
    /// By creation time, ascending.
    #[serde(rename = "created_at")]
    CreatedAt,
    /// By creation time, descending.
    #[serde(rename = "-created_at")]
    CreatedAtDesc,
    /// By last change, ascending.
    #[serde(rename = "updated_at")]
    UpdatedAt,
    /// By last change, descending.
    #[serde(rename = "-updated_at")]
    UpdatedAtDesc,
}

/// The `If-Match` header of conditional writes.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IfMatchParams {
    /// Apply only if the product's current ETag matches (else 412 and nothing changes).
    #[param(rename = "If-Match")]
    if_match: Option<String>,
}

/// The `Idempotency-Key` header of creating POSTs.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyParams {
    /// Makes a retry safe: the same key with the same request within 24 h replays the first
    /// answer; with another request it is a 422; while the first still runs, a 409. A caller
    /// holds at most 10,000 live keys: past that a new key is a 429.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = r"^[\x20-\x7e]+$"
    )]
    idempotency_key: Option<String>,
}
