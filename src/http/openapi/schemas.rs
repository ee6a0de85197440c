//! Request shapes for the OpenAPI document. The handlers read bodies field by field (to name
//! every bad field); these types describe the same rules as JSON Schema, and the contract
//! fuzzer in CI holds the two together.
#![allow(dead_code)]

use serde::Deserialize;
use utoipa::ToSchema;
use utoipa::openapi::{RefOr, Schema};

/// No control characters, and at least one character that is not white space.
pub const TEXT_PATTERN: &str =
    r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";
/// No control characters other than tab, line feed and carriage return.
pub const LONG_TEXT_PATTERN: &str = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$";
/// A price as a string: a whole number of cents from 0 to 1000000000.
pub const PRICE_STRING_PATTERN: &str = r"^((0|[1-9][0-9]{0,8})(\.[0-9]{1,2}0*)?|1000000000(\.0+)?)$";

fn from_json(value: serde_json::Value) -> RefOr<Schema> {
    serde_json::from_value(value).unwrap_or_else(|_| RefOr::T(Schema::default()))
}

/// Exact money in requests: a JSON number or a string, a whole number of cents.
pub fn price_input() -> RefOr<Schema> {
    from_json(serde_json::json!({
        "oneOf": [
            {"type": "string", "pattern": PRICE_STRING_PATTERN, "examples": ["19.99"]},
            // No `multipleOf: 0.01`: validators test it in binary floating point and refuse
            // valid prices such as 19.99 or 0.07. The two-decimals rule is stated instead.
            {"type": "number", "minimum": 0, "maximum": 1_000_000_000, "examples": [19.99]}
        ],
        "description": "A whole number of cents from 0 to 1000000000: at most two decimals, as a JSON number (19.99) or string (\"19.99\"; trailing zeros past the second decimal are accepted). Never rounded: 19.999 is refused with 422 `too_many_decimals`."
    }))
}

/// A product as POST and PUT take it. Unknown and read-only fields are refused.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Red T-shirt", "description": "100% cotton", "sku": "TSHIRT-RED-M", "price": "19.99", "stock": 12}))]
pub struct ProductWriteRequest {
    /// 1 to 200 characters after trimming; stored trimmed.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: String,
    /// At most 5000 characters.
    #[schema(
        max_length = 5000,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    description: Option<String>,
    /// 1 to 64 of A-Z a-z 0-9 . _ -, unique ignoring case.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    sku: Option<String>,
    #[schema(schema_with = price_input)]
    price: String,
    #[schema(minimum = 0, maximum = 2147483647)]
    stock: i64,
}

/// A JSON merge patch (RFC 7396) of a product: absent fields stay, `null` clears `description`
/// or `sku`; `name`, `price` and `stock` cannot be null.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"price": "17.50", "description": null}))]
pub struct ProductPatchRequest {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    #[serde(default)]
    name: String,
    #[schema(
        max_length = 5000,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    description: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    sku: Option<String>,
    #[schema(schema_with = price_input)]
    #[serde(default)]
    price: String,
    #[schema(minimum = 0, maximum = 2147483647)]
    #[serde(default)]
    stock: i64,
}

/// `{"delta", "reason"}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"delta": -3, "reason": "order 1001"}))]
pub struct StockAdjustmentRequest {
    /// A non-zero change of stock.
    #[schema(minimum = -2147483647, maximum = 2147483647)]
    delta: i64,
    /// Why: 1 to 200 characters after trimming.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    reason: String,
}

/// Registration: the account is always a customer (a `role` field is refused).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ana@example.com", "password": "a long passphrase"}))]
pub struct RegisterRequest {
    /// An ASCII email address; unique ignoring case.
    #[schema(
        min_length = 3,
        max_length = 254,
        pattern = r"^[!-?A-~]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"
    )]
    email: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
}

/// Credentials for `POST /api/v1/auth/login`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ana@example.com", "password": "a long passphrase"}))]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// A refresh token, for refresh and logout.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// An admin's change to a user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "staff"}))]
pub struct UserPatchRequest {
    #[serde(default)]
    role: RoleName,
    #[serde(default)]
    disabled: bool,
}

/// The roles a user can have.
#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    /// Everything, including user management.
    Admin,
    /// Product and stock writes.
    Staff,
    /// Reads, and its own account.
    #[default]
    Customer,
}

/// An export: its format and the listing's filters, all optional.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"format": "csv", "q": "shirt", "min_price": "5.00", "in_stock": true}))]
pub struct ExportRequest {
    /// `csv` (default) or `jsonl`.
    #[schema(pattern = "^(csv|jsonl)$")]
    format: Option<String>,
    /// Full-text search words, as in the listing.
    #[schema(max_length = 200)]
    q: Option<String>,
    /// Lowest price, inclusive.
    #[schema(schema_with = price_input)]
    min_price: Option<String>,
    /// Highest price, inclusive.
    #[schema(schema_with = price_input)]
    max_price: Option<String>,
    /// Only products with (true) or without (false) stock.
    in_stock: Option<bool>,
}

/// An event type a webhook endpoint can subscribe to.
#[derive(Deserialize, ToSchema)]
pub enum WebhookEventName {
    /// A product was created (POST, import).
    #[serde(rename = "product.created")]
    ProductCreated,
    /// A product was changed (PUT, PATCH, import).
    #[serde(rename = "product.updated")]
    ProductUpdated,
    /// A product was deleted; `data` is the product as it was.
    #[serde(rename = "product.deleted")]
    ProductDeleted,
    /// A stock adjustment; `data` is the ledger entry with the product's new `version`.
    #[serde(rename = "stock.adjusted")]
    StockAdjusted,
    /// An import job finished; `data` is the job.
    #[serde(rename = "import.finished")]
    ImportFinished,
    /// An export job finished; `data` is the job.
    #[serde(rename = "export.finished")]
    ExportFinished,
}

/// Where a delivery stands.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatusName {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Every attempt failed; only a manual retry sends it again.
    Dead,
}

/// A new webhook endpoint.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://example.com/hooks/tienda", "events": ["product.created", "product.updated"], "description": "search index"}))]
pub struct WebhookCreateRequest {
    /// An absolute `http` or `https` URL (`https` in production) whose host does not resolve
    /// to a loopback, private, link-local or reserved address.
    #[schema(max_length = 2048, format = "uri")]
    url: String,
    /// At least one event type.
    #[schema(min_items = 1)]
    events: Vec<WebhookEventName>,
    #[schema(max_length = 500)]
    description: Option<String>,
}

/// A change to a webhook endpoint (JSON merge patch).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"disabled": false}))]
pub struct WebhookPatchRequest {
    #[schema(max_length = 2048, format = "uri")]
    url: Option<String>,
    #[schema(min_items = 1)]
    events: Option<Vec<WebhookEventName>>,
    #[schema(max_length = 500)]
    description: Option<String>,
    /// `true` stops deliveries; `false` resumes them (and forgets the run of failures).
    disabled: Option<bool>,
}
