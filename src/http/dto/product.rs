//! The product as JSON, both ways.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::domain::money::Price;
use crate::domain::product::{
    Description, Invalid, Product, ProductDraft, ProductName, ProductPatch, Sku, Stock,
};
use crate::http::error::{ApiError, FieldErrors};
use crate::http::json_body::{Fields, JsonObject, decode};

/// Fields the server owns: sent back to us, they are rejected as read-only, not unknown.
const READ_ONLY: &[&str] = &["id", "version", "created_at", "updated_at"];

fn name(raw: &serde_json::value::RawValue) -> Result<ProductName, Invalid> {
    ProductName::parse(&decode::string(raw)?)
}
fn description(raw: &serde_json::value::RawValue) -> Result<Description, Invalid> {
    Description::parse(&decode::string(raw)?)
}
fn sku(raw: &serde_json::value::RawValue) -> Result<Sku, Invalid> {
    Sku::parse(&decode::string(raw)?)
}
fn price(raw: &serde_json::value::RawValue) -> Result<Price, Invalid> {
    let parsed = match decode::decimal_text(raw)? {
        decode::Decimal::String(text) => Price::parse_plain(&text),
        decode::Decimal::Number(text) => Price::parse(&text),
    };
    parsed.map_err(|e| Invalid::new(e.code(), e.to_string()))
}
fn stock(raw: &serde_json::value::RawValue) -> Result<Stock, Invalid> {
    Stock::new(decode::integer(raw)?)
}

/// A POST or PUT body: every required field present, nothing unknown.
pub fn parse_draft(body: JsonObject) -> Result<ProductDraft, ApiError> {
    draft_fields(body).map_err(ApiError::Validation)
}

/// [`parse_draft`] with the field errors as they are: the one parser of a product's fields,
/// for request bodies and import rows alike.
pub fn draft_fields(body: JsonObject) -> Result<ProductDraft, FieldErrors> {
    let mut fields = Fields::new(body);
    let name = fields.required("name", name);
    let description = fields.nullable("description", description);
    let sku = fields.nullable("sku", sku);
    let price = fields.required("price", price);
    let stock = fields.required("stock", stock);
    fields.finish_errors(READ_ONLY)?;
    match (name, price, stock) {
        (Some(name), Some(price), Some(stock)) => Ok(ProductDraft {
            name,
            description: description.flatten(),
            sku: sku.flatten(),
            price,
            stock,
        }),
        // finish() has already reported whatever made one of them missing.
        _ => Err(FieldErrors::default()),
    }
}

/// A merge-patch body (RFC 7396): absent leaves a field, `null` clears a nullable one.
pub fn parse_patch(body: JsonObject) -> Result<ProductPatch, ApiError> {
    let mut fields = Fields::new(body);
    let patch = ProductPatch {
        name: fields.optional("name", name),
        description: fields.nullable("description", description),
        sku: fields.nullable("sku", sku),
        price: fields.optional("price", price),
        stock: fields.optional("stock", stock),
    };
    fields.finish(READ_ONLY)?;
    Ok(patch)
}

/// A product as the API returns it. `price` is a string with exactly two decimals, so no client
/// JSON parser turns it into a binary float.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 42, "sku": "TSHIRT-RED-M", "name": "Red T-shirt", "description": "100% cotton", "price": "19.99", "stock": 12, "version": 3, "created_at": "2026-11-29T10:00:00Z", "updated_at": "2026-11-29T10:05:00Z"}))]
pub struct ProductResponse {
    pub id: i64,
    pub sku: Option<String>,
    pub name: String,
    pub description: Option<String>,
    /// Exact, always with two decimals.
    #[schema(pattern = r"^(0|[1-9][0-9]*)\.[0-9]{2}$")]
    pub price: String,
    #[schema(minimum = 0, maximum = 2147483647)]
    pub stock: i64,
    /// Starts at 1, +1 on every change; the ETag is derived from it.
    #[schema(minimum = 1)]
    pub version: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl crate::http::pagination::PageItem for ProductResponse {
    const PAGE_NAME: &'static str = "ProductPage";
}

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl From<Product> for ProductResponse {
    fn from(product: Product) -> Self {
        let ProductDraft {
            name,
            description,
            sku,
            price,
            stock,
        } = product.draft;
        ProductResponse {
            id: product.id,
            sku: sku.map(|s| s.as_str().to_owned()),
            name: name.as_str().to_owned(),
            description: description.map(|d| d.as_str().to_owned()),
            price: price.to_string(),
            stock: stock.units(),
            version: product.version,
            created_at: rfc3339(product.created_at),
            updated_at: rfc3339(product.updated_at),
        }
    }
}
