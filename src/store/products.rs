//! Products and the ledger rows their stock changes write.

use sqlx::FromRow;
use tracing::instrument;

use super::error::is_unique_violation;
use super::idempotency::{Completion, write_transaction};
use super::inventory::insert_ledger;
use super::outbox::record_some;
use super::{Conflict, Store, StoreError, Timestamp, for_update, on_db};
use crate::domain::etag::Precondition;
use crate::domain::money::Price;
use crate::domain::product::{Description, Product, ProductDraft, ProductName, Sku, Stock};
use crate::domain::webhook::EventType;

const SKU_KEY: &str = "products_sku_key";

/// The columns of a product, in the order [`ProductRow`] reads them.
/// With a table alias (`product_columns!("p.")`) for statements that join.
macro_rules! product_columns {
    () => {
        product_columns!("")
    };
    ($alias:literal) => {
        concat!(
            $alias,
            "id, ",
            $alias,
            "sku, ",
            $alias,
            "name, ",
            $alias,
            "description, ",
            $alias,
            "price_cents, ",
            $alias,
            "stock, ",
            $alias,
            "version, ",
            $alias,
            "created_at, ",
            $alias,
            "updated_at"
        )
    };
}
pub(crate) use product_columns;

#[derive(Debug, FromRow)]
pub(crate) struct ProductRow {
    id: i64,
    sku: Option<String>,
    name: String,
    description: Option<String>,
    price_cents: i64,
    stock: i64,
    version: i64,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl ProductRow {
    /// The product's id.
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    /// The product's id and stock, as stored.
    pub(crate) fn id_and_stock(&self) -> (i64, i64) {
        (self.id, self.stock)
    }
}

impl TryFrom<ProductRow> for Product {
    type Error = StoreError;

    fn try_from(row: ProductRow) -> Result<Self, Self::Error> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("product {}: {what}", row.id));
        let draft = ProductDraft {
            name: ProductName::parse(&row.name).map_err(|_| corrupt("name"))?,
            description: row
                .description
                .as_deref()
                .map(Description::parse)
                .transpose()
                .map_err(|_| corrupt("description"))?,
            sku: row
                .sku
                .as_deref()
                .map(Sku::parse)
                .transpose()
                .map_err(|_| corrupt("sku"))?,
            price: Price::from_cents(row.price_cents).map_err(|_| corrupt("price"))?,
            stock: Stock::new(row.stock).map_err(|_| corrupt("stock"))?,
        };
        Ok(Product {
            id: row.id,
            draft,
            version: row.version,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        })
    }
}

fn map_write_error(error: sqlx::Error) -> StoreError {
    if is_unique_violation(&error, SKU_KEY, "products") {
        StoreError::Conflict(Conflict::DuplicateSku)
    } else {
        error.into()
    }
}

pub(crate) const INSERT_PRODUCT: &str = concat!(
    "INSERT INTO products (sku, name, description, price_cents, stock, version, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, 1, $6, $6) RETURNING ",
    product_columns!()
);
const SELECT_PRODUCT: &str = concat!("SELECT ", product_columns!(), " FROM products WHERE id = $1");
pub(crate) const UPDATE_PRODUCT: &str = concat!(
    "UPDATE products SET sku = $1, name = $2, description = $3, price_cents = $4, stock = $5, \
     version = version + 1, updated_at = $6 WHERE id = $7 RETURNING ",
    product_columns!()
);

/// Binds a draft's columns as `$1` to `$5`, in the order [`INSERT_PRODUCT`] and
/// [`UPDATE_PRODUCT`] take them.
macro_rules! bind_draft {
    ($query:expr, $draft:expr) => {
        $query
            .bind($draft.sku.as_ref().map(Sku::as_str))
            .bind($draft.name.as_str())
            .bind($draft.description.as_ref().map(Description::as_str))
            .bind($draft.price.cents())
            .bind($draft.stock.units())
    };
}

/// Reads product `$id` under its write lock in the open transaction `$tx`; returns early with
/// `NotFound`, or `PreconditionFailed` when `$precondition` does not hold for it.
macro_rules! locked_product {
    ($tx:ident, $dialect:ident, $id:expr, $precondition:expr) => {{
        let current: Option<ProductRow> = sqlx::query_as(for_update!(
            $dialect,
            concat!("SELECT ", product_columns!(), " FROM products WHERE id = $1")
        ))
        .bind($id)
        .fetch_optional(&mut *$tx)
        .await?;
        let current = Product::try_from(current.ok_or(StoreError::NotFound)?)?;
        if !$precondition.holds(current.version) {
            return Err(StoreError::PreconditionFailed);
        }
        current
    }};
}

/// Why a ledger row was written by a product write (stock adjustments carry the client's reason).
pub const REASON_INITIAL: &str = "initial stock";
/// The reason of a ledger row written by a PUT or PATCH that changes the stock.
pub const REASON_MANUAL_SET: &str = "manual set";

impl Store {
    /// Inserts a product and its first ledger row in one transaction.
    #[instrument(name = "db.create_product", skip_all, err(level = "debug"))]
    pub async fn create_product(
        &self,
        draft: &ProductDraft,
        actor: Option<i64>,
        completion: Option<Completion<Product>>,
    ) -> Result<Product, StoreError> {
        let now = Timestamp::now();
        let result = write_transaction!(self, completion, |tx, dialect| {
            let row: ProductRow = bind_draft!(sqlx::query_as(INSERT_PRODUCT), draft)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_write_error)?;
            insert_ledger!(tx, product: row.id, delta: row.stock, stock_after: row.stock,
                reason: REASON_INITIAL, actor: actor, at: now)
            .await?;
            let product = Product::try_from(row)?;
            record_some(&mut *tx, EventType::ProductCreated, self.product_event(&product)).await?;
            Ok(product)
        });
        self.after_product_write(result, |p| vec![p.id], Vec::new()).await
    }

    /// A product by id.
    #[instrument(name = "db.get_product", skip_all, fields(product_id = id), err(level = "debug"))]
    pub async fn get_product(&self, id: i64) -> Result<Product, StoreError> {
        on_db!(self, |reader, _writer, _dialect| {
            let row: Option<ProductRow> = sqlx::query_as(SELECT_PRODUCT)
                .bind(id)
                .fetch_optional(reader)
                .await?;
            row.ok_or(StoreError::NotFound).and_then(Product::try_from)
        })
    }

    /// Replaces the client-owned fields with what `change` makes of the current ones, when
    /// `precondition` holds, bumping `version`. A stock change writes a `manual set` ledger row.
    /// Read, check and write happen under the row's write lock, in one transaction.
    #[instrument(name = "db.update_product", skip_all, fields(product_id = id), err(level = "debug"))]
    pub async fn update_product(
        &self,
        id: i64,
        precondition: &Precondition,
        actor: Option<i64>,
        change: impl FnOnce(&ProductDraft) -> ProductDraft,
    ) -> Result<Product, StoreError> {
        let now = Timestamp::now();
        let result = write_transaction!(self, |tx, dialect| {
            let current = locked_product!(tx, dialect, id, precondition);
            let draft = change(&current.draft);
            let row: ProductRow = bind_draft!(sqlx::query_as(UPDATE_PRODUCT), draft)
                .bind(now)
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_write_error)?;
            let delta = draft.stock.units() - current.draft.stock.units();
            if delta != 0 {
                insert_ledger!(tx, product: id, delta: delta, stock_after: row.stock,
                    reason: REASON_MANUAL_SET, actor: actor, at: now)
                .await?;
            }
            let product = Product::try_from(row)?;
            record_some(&mut *tx, EventType::ProductUpdated, self.product_event(&product)).await?;
            Ok(product)
        });
        self.after_product_write(result, |p| vec![p.id], vec![id]).await
    }

    /// Deletes a product when `precondition` holds. Its ledger goes with it (ON DELETE CASCADE).
    #[instrument(name = "db.delete_product", skip_all, fields(product_id = id), err(level = "debug"))]
    pub async fn delete_product(&self, id: i64, precondition: &Precondition) -> Result<(), StoreError> {
        let result = write_transaction!(self, |tx, dialect| {
            let current = locked_product!(tx, dialect, id, precondition);
            // The event carries the product as it was.
            record_some(&mut *tx, EventType::ProductDeleted, self.product_event(&current)).await?;
            sqlx::query("DELETE FROM products WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            Ok(())
        });
        self.after_product_write(result, |_| vec![id], vec![id]).await
    }
}
