//! Import batches and export snapshots: the bulk paths into and out of `products`.
//!
//! An import batch is one write transaction: it looks up the batch's skus (locked), writes
//! what each row plans, writes a ledger row for every stock change (its reason names the job),
//! and records the job's progress and checkpoint, fenced by its lease. So a batch and the
//! progress that says it was done commit together or not at all, and a resumed run starts
//! exactly after the last committed batch.

use std::collections::HashMap;
use std::future::Future;

use futures_util::future::BoxFuture;
use serde_json::Value;
use tracing::instrument;

use super::idempotency::write_transaction;
use super::inventory::insert_ledger;
use super::jobs::{Lease, Progress, record_progress};
use super::listing::export_where;
use super::outbox::{self, OutboxWriter, record_some};
use super::products::{ProductRow, product_columns};
use super::{Store, StoreError, Timestamp, on_db};
use crate::domain::import::{ImportMode, ImportRow, Plan, plan};
use crate::domain::listing::Filters;
use crate::domain::product::{Description, Product, ProductDraft, Sku};
use crate::domain::webhook::EventType;

/// The products of `rows`, by lower-cased sku.
fn by_sku(rows: Vec<ProductRow>) -> Result<HashMap<String, Product>, StoreError> {
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        let product = Product::try_from(row)?;
        if let Some(sku) = &product.draft.sku {
            found.insert(sku.as_str().to_ascii_lowercase(), product);
        }
    }
    Ok(found)
}

fn lower_skus(rows: &[ImportRow]) -> Vec<String> {
    let mut skus: Vec<String> = rows
        .iter()
        .filter_map(|row| row.draft.sku.as_ref())
        .map(|sku| sku.as_str().to_ascii_lowercase())
        .collect();
    skus.sort();
    skus.dedup();
    skus
}

/// Writes a product's changed fields (version + 1) and, when its stock changed, a ledger row,
/// inside `$tx`; evaluates to the product.
macro_rules! update_product {
    ($tx:expr, $current:expr, $draft:expr, $reason:expr, $now:expr) => {{
        let (current, draft): (&Product, &ProductDraft) = ($current, $draft);
        let row: ProductRow = sqlx::query_as(super::products::UPDATE_PRODUCT)
            .bind(draft.sku.as_ref().map(Sku::as_str))
            .bind(draft.name.as_str())
            .bind(draft.description.as_ref().map(Description::as_str))
            .bind(draft.price.cents())
            .bind(draft.stock.units())
            .bind($now)
            .bind(current.id)
            .fetch_one(&mut *$tx)
            .await?;
        let delta = draft.stock.units() - current.draft.stock.units();
        if delta != 0 {
            insert_ledger!($tx, product: current.id, delta: delta, stock_after: draft.stock.units(),
                reason: $reason, actor: None::<i64>, at: $now)
            .await?;
        }
        Product::try_from(row)?
    }};
}

/// The bulk statements of an import batch, in each engine's fastest form: multi-row `VALUES`
/// and `IN` lists on SQLite; on PostgreSQL arrays bound once (`UNNEST`, `= ANY`), a few
/// parameters whatever the batch's size, where a list binds one per value and the planner
/// estimates each of them again for every batch (45 ms for 2,000 skus, against 5 ms for the
/// generic plan of `= ANY($1)`).
trait BulkStatements: Send {
    /// The products whose sku (ignoring case) is one of the lower-cased `skus`, by lower-cased
    /// sku; `lock` takes their row locks (PostgreSQL, in a write transaction).
    fn products_by_sku(
        &mut self,
        skus: &[String],
        lock: bool,
    ) -> impl Future<Output = Result<Vec<ProductRow>, sqlx::Error>> + Send;

    /// Inserts new products from `drafts` (version 1, created and updated `now`), in order, with
    /// each one's first ledger row (its initial stock, `reason`).
    fn insert_products(
        &mut self,
        drafts: &[ProductDraft],
        reason: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<ProductRow>, sqlx::Error>> + Send;
}

impl BulkStatements for sqlx::SqliteConnection {
    async fn products_by_sku(
        &mut self,
        skus: &[String],
        _lock: bool,
    ) -> Result<Vec<ProductRow>, sqlx::Error> {
        if skus.is_empty() {
            return Ok(Vec::new());
        }
        // SQLite's one writer is the lock.
        let sql = format!(
            "SELECT {} FROM products WHERE lower(sku) IN ({})",
            product_columns!(),
            vec!["?"; skus.len()].join(", ")
        );
        let mut query = sqlx::query_as::<_, ProductRow>(sqlx::AssertSqlSafe(sql));
        for sku in skus {
            query = query.bind(sku.as_str());
        }
        query.fetch_all(&mut *self).await
    }

    async fn insert_products(
        &mut self,
        drafts: &[ProductDraft],
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<ProductRow>, sqlx::Error> {
        let values = vec!["(?, ?, ?, ?, ?, 1, ?, ?)"; drafts.len()].join(", ");
        let sql = format!(
            "INSERT INTO products (sku, name, description, price_cents, stock, version, created_at, updated_at) \
             VALUES {values} RETURNING {}",
            product_columns!()
        );
        let mut insert = sqlx::query_as::<_, ProductRow>(sqlx::AssertSqlSafe(sql));
        for draft in drafts {
            insert = insert
                .bind(draft.sku.as_ref().map(Sku::as_str))
                .bind(draft.name.as_str())
                .bind(draft.description.as_ref().map(Description::as_str))
                .bind(draft.price.cents())
                .bind(draft.stock.units())
                .bind(now)
                .bind(now);
        }
        let inserted = insert.fetch_all(&mut *self).await?;
        let values = vec!["(?, ?, ?, ?, NULL, ?)"; inserted.len()].join(", ");
        let sql = format!(
            "INSERT INTO stock_ledger (product_id, delta, stock_after, reason, actor_id, created_at) VALUES {values}"
        );
        let mut ledger = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in &inserted {
            let (id, stock) = row.id_and_stock();
            ledger = ledger.bind(id).bind(stock).bind(stock).bind(reason).bind(now);
        }
        ledger.execute(&mut *self).await?;
        Ok(inserted)
    }
}

impl BulkStatements for sqlx::PgConnection {
    async fn products_by_sku(&mut self, skus: &[String], lock: bool) -> Result<Vec<ProductRow>, sqlx::Error> {
        if skus.is_empty() {
            return Ok(Vec::new());
        }
        let sql = if lock {
            concat!(
                "SELECT ",
                product_columns!(),
                " FROM products WHERE lower(sku) = ANY($1) FOR UPDATE"
            )
        } else {
            concat!(
                "SELECT ",
                product_columns!(),
                " FROM products WHERE lower(sku) = ANY($1)"
            )
        };
        sqlx::query_as::<_, ProductRow>(sql)
            .bind(skus)
            .fetch_all(&mut *self)
            .await
    }

    async fn insert_products(
        &mut self,
        drafts: &[ProductDraft],
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<ProductRow>, sqlx::Error> {
        let skus: Vec<Option<&str>> = drafts.iter().map(|d| d.sku.as_ref().map(Sku::as_str)).collect();
        let names: Vec<&str> = drafts.iter().map(|d| d.name.as_str()).collect();
        let descriptions: Vec<Option<&str>> = drafts
            .iter()
            .map(|d| d.description.as_ref().map(Description::as_str))
            .collect();
        let prices: Vec<i64> = drafts.iter().map(|d| d.price.cents()).collect();
        let stocks: Vec<i64> = drafts.iter().map(|d| d.stock.units()).collect();
        // One statement for both tables: the new ids never travel to the client and back.
        // `WITH ORDINALITY ... ORDER BY n`: ids are given in the file's order (and the answer is
        // read back in id order).
        sqlx::query_as::<_, ProductRow>(concat!(
            "WITH inserted AS (\
               INSERT INTO products (sku, name, description, price_cents, stock, version, created_at, updated_at) \
               SELECT sku, name, description, price_cents, stock, 1, $6, $6 \
               FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[]) \
               WITH ORDINALITY AS t(sku, name, description, price_cents, stock, n) ORDER BY n RETURNING ",
            product_columns!(),
            "), ledger AS (\
               INSERT INTO stock_ledger (product_id, delta, stock_after, reason, actor_id, created_at) \
               SELECT id, stock, stock, $7, NULL, $6 FROM inserted) \
             SELECT * FROM inserted ORDER BY id"
        ))
        .bind(skus)
        .bind(names)
        .bind(descriptions)
        .bind(prices)
        .bind(stocks)
        .bind(now)
        .bind(reason)
        .fetch_all(&mut *self)
        .await
    }
}

impl Store {
    /// The current products for the rows' skus (ignoring case), without locking: what a dry run
    /// or a validation pass compares with.
    pub async fn products_by_sku(&self, rows: &[ImportRow]) -> Result<HashMap<String, Product>, StoreError> {
        let skus = lower_skus(rows);
        on_db!(self, |reader, _writer, _dialect| {
            let mut connection = reader.acquire().await?;
            by_sku(connection.products_by_sku(&skus, false).await?)
        })
    }

    /// Writes one batch of valid rows for import job `lease.job_id` in one transaction, with the
    /// progress and checkpoint `finish` makes of the rows' plans. The plans, and whether a cancel
    /// was asked for.
    #[instrument(name = "db.import_batch", skip_all, fields(job_id = lease.job_id, rows = rows.len()), err(level = "debug"))]
    pub async fn import_batch(
        &self,
        lease: &Lease,
        mode: ImportMode,
        rows: &[ImportRow],
        finish: impl FnOnce(&[Plan]) -> (Progress, Value),
    ) -> Result<(Vec<Plan>, bool), StoreError> {
        let now = Timestamp::now();
        let reason = format!("import job {}", lease.job_id);
        let skus = lower_skus(rows);
        let result = write_transaction!(self, |tx, dialect| {
            let mut existing = by_sku(tx.products_by_sku(&skus, true).await?)?;
            let [wants_created, wants_updated] = tx
                .subscribed([EventType::ProductCreated, EventType::ProductUpdated])
                .await?;
            let mut plans = Vec::with_capacity(rows.len());
            // New products are inserted together at the end of the batch, in one statement; a
            // later row of the batch with the same sku changes the pending draft instead.
            let mut creates: Vec<ProductDraft> = Vec::new();
            let mut pending: HashMap<String, usize> = HashMap::new();
            for row in rows {
                let key = row.draft.sku.as_ref().map(|s| s.as_str().to_ascii_lowercase());
                if let Some(&at) = key.as_ref().and_then(|k| pending.get(k)) {
                    plans.push(match mode {
                        ImportMode::Create => Plan::Taken,
                        ImportMode::Upsert if creates[at] == row.draft => Plan::Unchanged,
                        ImportMode::Upsert => {
                            creates[at] = row.draft.clone();
                            Plan::Update
                        }
                    });
                    continue;
                }
                let current = key.as_ref().and_then(|k| existing.get(k));
                let planned = plan(mode, &row.draft, current.map(|p| &p.draft));
                match (planned, current, key) {
                    (Plan::Create, _, key) => {
                        if let Some(key) = key {
                            pending.insert(key, creates.len());
                        }
                        creates.push(row.draft.clone());
                    }
                    (Plan::Update, Some(current), Some(key)) => {
                        let product = update_product!(tx, current, &row.draft, reason.as_str(), now);
                        let event = wants_updated.then(|| self.product_event(&product)).flatten();
                        record_some(&mut *tx, EventType::ProductUpdated, event).await?;
                        existing.insert(key, product);
                    }
                    _ => {}
                }
                plans.push(planned);
            }
            if !creates.is_empty() {
                let inserted = tx.insert_products(&creates, &reason, now).await?;
                if wants_created {
                    let mut events = Vec::with_capacity(inserted.len());
                    for row in inserted {
                        if let Some(data) = self.product_event(&Product::try_from(row)?) {
                            events.push(outbox::render(EventType::ProductCreated, data)?);
                        }
                    }
                    OutboxWriter::insert_events(&mut *tx, &events).await?;
                }
            }
            let (progress, checkpoint) = finish(&plans);
            let cancel = record_progress!(tx, lease, progress, Some(&checkpoint)).await?;
            Ok((plans, cancel))
        });
        // A batch is a bulk write: the cache drops everything rather than tracking each row. An
        // error that may hide a commit counts as a write too.
        let wrote = match &result {
            Ok((plans, _)) => plans.iter().any(|p| matches!(p, Plan::Create | Plan::Update)),
            Err(StoreError::Unavailable(_) | StoreError::Database(_)) => true,
            Err(_) => false,
        };
        if wrote {
            self.products_changed(super::changes::ProductChange::All).await;
        }
        result
    }

    /// Reads the products `filters` select from one snapshot (a single read transaction,
    /// REPEATABLE READ on PostgreSQL), in keyset pages of `page` by id, handing each page to
    /// `sink`. Memory stays at one page whatever the catalogue's size.
    #[instrument(name = "db.export_snapshot", skip_all, err(level = "debug"))]
    pub async fn export_snapshot<'s>(
        &self,
        filters: &Filters,
        page: i64,
        mut sink: impl FnMut(Vec<Product>) -> BoxFuture<'s, Result<(), StoreError>>,
    ) -> Result<u64, StoreError> {
        on_db!(self, |reader, _writer, dialect| {
            let mut tx = reader.begin().await?;
            if dialect == crate::store::Dialect::Postgres {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
            }
            let mut after = 0i64;
            let mut total = 0u64;
            loop {
                let (sql, binds) = export_where(dialect, filters, after, page);
                let mut query = sqlx::query_as::<_, ProductRow>(sqlx::AssertSqlSafe(sql));
                for bind in binds {
                    query = match bind {
                        super::listing::ExportBind::Int(v) => query.bind(v),
                        super::listing::ExportBind::Text(v) => query.bind(v),
                    };
                }
                let rows = query.fetch_all(&mut *tx).await?;
                let Some(last) = rows.last().map(ProductRow::id) else {
                    break;
                };
                after = last;
                total += rows.len() as u64;
                let products = rows
                    .into_iter()
                    .map(Product::try_from)
                    .collect::<Result<Vec<_>, _>>()?;
                sink(products).await?;
            }
            tx.commit().await?;
            Ok(total)
        })
    }
}
