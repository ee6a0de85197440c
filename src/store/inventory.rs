//! Stock adjustments: one conditional update decides, and the ledger row goes with it.

use sqlx::FromRow;
use tracing::instrument;

use super::idempotency::{Completion, write_transaction};
use super::outbox::record_some;
use super::{Conflict, Store, StoreError, Timestamp, on_db};
use crate::domain::inventory::{Adjustment, Delta, Reason};
use crate::domain::webhook::EventType;

#[derive(Debug, FromRow)]
pub(crate) struct LedgerRow {
    id: i64,
    product_id: i64,
    delta: i64,
    stock_after: i64,
    reason: String,
    actor_id: Option<i64>,
    created_at: Timestamp,
}

impl From<LedgerRow> for Adjustment {
    fn from(row: LedgerRow) -> Self {
        Adjustment {
            id: row.id,
            product_id: row.product_id,
            delta: row.delta,
            stock_after: row.stock_after,
            reason: row.reason,
            actor: row.actor_id,
            created_at: row.created_at.0,
        }
    }
}

/// The columns of a ledger row, in the order [`LedgerRow`] reads them.
macro_rules! ledger_columns {
    () => {
        "id, product_id, delta, stock_after, reason, actor_id, created_at"
    };
}
const LEDGER_COLUMNS: &str = ledger_columns!();

pub(crate) const INSERT_LEDGER: &str = concat!(
    "INSERT INTO stock_ledger (product_id, delta, stock_after, reason, actor_id, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
    ledger_columns!()
);

/// Writes one ledger row inside the transaction `$tx` and yields it (a future of
/// `Result<LedgerRow, sqlx::Error>`): every stock change, whatever wrote it, goes through here.
macro_rules! insert_ledger {
    ($tx:expr, product: $product:expr, delta: $delta:expr, stock_after: $after:expr, reason: $reason:expr, actor: $actor:expr, at: $now:expr) => {
        sqlx::query_as::<_, $crate::store::inventory::LedgerRow>($crate::store::inventory::INSERT_LEDGER)
            .bind($product)
            .bind($delta)
            .bind($after)
            .bind($reason)
            .bind($actor)
            .bind($now)
            .fetch_one(&mut *$tx)
    };
}
pub(crate) use insert_ledger;

impl Store {
    /// Adds `delta` to a product's stock when the result stays within 0..=2147483647, bumps its
    /// version and writes the ledger row, in one transaction. The database decides: the update
    /// is conditional, so concurrent adjustments can never take the stock below zero.
    #[instrument(name = "db.adjust_stock", skip_all, fields(product_id, delta = delta.units()), err(level = "debug"))]
    pub async fn adjust_stock(
        &self,
        product_id: i64,
        delta: Delta,
        reason: &Reason,
        actor: Option<i64>,
        completion: Option<Completion<Adjustment>>,
    ) -> Result<Adjustment, StoreError> {
        let now = Timestamp::now();
        let result = write_transaction!(self, completion, |tx, dialect| {
            let changed: Option<(i64, i64)> = sqlx::query_as(
                "UPDATE products SET stock = stock + $2, version = version + 1, updated_at = $3 \
                 WHERE id = $1 AND stock + $2 BETWEEN 0 AND 2147483647 RETURNING stock, version",
            )
            .bind(product_id)
            .bind(delta.units())
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((stock_after, version)) = changed else {
                // Nothing changed: find out why, for the right answer.
                let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM products WHERE id = $1")
                    .bind(product_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                return Err(match (exists, delta.units() < 0) {
                    (None, _) => StoreError::NotFound,
                    (Some(_), true) => StoreError::Conflict(Conflict::InsufficientStock),
                    (Some(_), false) => StoreError::Conflict(Conflict::StockLimit),
                });
            };
            let row = insert_ledger!(tx, product: product_id, delta: delta.units(), stock_after: stock_after,
                reason: reason.as_str(), actor: actor, at: now)
            .await?;
            let adjustment = Adjustment::from(row);
            record_some(
                &mut *tx,
                EventType::StockAdjusted,
                self.adjustment_event(&adjustment, version),
            )
            .await?;
            Ok(adjustment)
        });
        self.after_product_write(result, |_| vec![product_id], vec![product_id])
            .await
    }

    /// A product's ledger, newest first, one offset page, with the number of rows. `NotFound`
    /// when the product does not exist.
    #[instrument(name = "db.list_ledger", skip_all, fields(product_id), err(level = "debug"))]
    pub async fn list_ledger(
        &self,
        product_id: i64,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<Adjustment>, u64), StoreError> {
        let limit = limit.min(i64::MAX as u64) as i64;
        let offset = offset.min(i64::MAX as u64) as i64;
        on_db!(self, |reader, _writer, _dialect| {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM products WHERE id = $1")
                .bind(product_id)
                .fetch_optional(reader)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
            let sql = format!(
                "SELECT {LEDGER_COLUMNS} FROM stock_ledger WHERE product_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3"
            );
            let rows: Vec<LedgerRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(product_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(reader)
                .await?;
            let total: i64 = sqlx::query_scalar("SELECT count(*) FROM stock_ledger WHERE product_id = $1")
                .bind(product_id)
                .fetch_one(reader)
                .await?;
            Ok((
                rows.into_iter().map(Adjustment::from).collect(),
                total.max(0) as u64,
            ))
        })
    }
}
