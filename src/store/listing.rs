//! Product listings: filters, sorts with the id tie-break, offset and keyset pages, full-text
//! search, and the count behind `total`.
//!
//! The statement is assembled from fixed fragments; every value a client sent is a bound
//! parameter. Only full-text search differs by dialect (FTS5 vs tsvector).

use sqlx::{FromRow, Row};
use tracing::instrument;

use super::products::ProductRow;
use super::{Dialect, Store, StoreError, Timestamp, on_db};
use crate::domain::listing::{After, Filters, KeyValue, ListQuery, Page, Sort, SortKey};
use crate::domain::product::Product;

/// One page of products; `total` for offset pages, `next` (where the following keyset page
/// starts) when more items follow.
#[derive(Debug)]
pub struct Listed {
    pub items: Vec<Product>,
    pub total: Option<u64>,
    pub next: Option<After>,
}

const COLUMNS: &str =
    "p.id, p.sku, p.name, p.description, p.price_cents, p.stock, p.version, p.created_at, p.updated_at";

#[derive(Debug, Clone)]
enum Bind {
    Int(i64),
    Text(String),
    Float(f64),
    Time(Timestamp),
}

/// A statement under construction: SQL text plus its parameters in order.
#[derive(Debug, Default)]
struct Statement {
    sql: String,
    binds: Vec<Bind>,
}

impl Statement {
    fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        let placeholder = format!("${}", self.binds.len());
        self.sql.push_str(&placeholder);
        self
    }
}

/// Binds a [`Statement`]'s parameters onto a sqlx query of either backend.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                Bind::Int(v) => query.bind(*v),
                Bind::Text(v) => query.bind(v.as_str()),
                Bind::Float(v) => query.bind(*v),
                Bind::Time(v) => query.bind(*v),
            };
        }
        query
    }};
}

fn key_column(key: SortKey) -> &'static str {
    match key {
        SortKey::Id => "p.id",
        SortKey::Name => "p.name",
        SortKey::Price => "p.price_cents",
        SortKey::Stock => "p.stock",
        SortKey::CreatedAt => "p.created_at",
        SortKey::UpdatedAt => "p.updated_at",
        SortKey::Relevance => "p.score",
    }
}

/// The FTS5 query for the search terms: each term a quoted phrase, all required.
fn fts5_match(filters: &Filters) -> Option<String> {
    filters.q.as_ref().map(|q| {
        q.terms()
            .map(|term| format!("\"{}\"", term.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// `FROM ... WHERE ...` for the filters; with a search, `score` (lower is more relevant) is
/// selectable.
fn push_from_where(statement: &mut Statement, dialect: Dialect, filters: &Filters, with_score: bool) {
    match (&filters.q, dialect) {
        (Some(_), Dialect::Sqlite) => {
            if with_score {
                // bm25 weights: a word in the name counts most, then the sku, then the description.
                statement.push(", bm25(products_fts, 10.0, 1.0, 5.0) AS score");
            }
            statement.push(
                " FROM products_fts JOIN products p ON p.id = products_fts.rowid WHERE products_fts MATCH ",
            );
            statement.bind(Bind::Text(fts5_match(filters).unwrap_or_default()));
        }
        (Some(q), Dialect::Postgres) => {
            if with_score {
                statement.push(", (-ts_rank(p.search, query))::float8 AS score");
            }
            statement.push(" FROM products p, plainto_tsquery('simple', ");
            statement.bind(Bind::Text(q.as_str().to_owned()));
            statement.push(") AS query WHERE p.search @@ query");
        }
        (None, _) => {
            statement.push(" FROM products p WHERE TRUE");
        }
    }
    if let Some(min) = filters.min_price() {
        statement
            .push(" AND p.price_cents >= ")
            .bind(Bind::Int(min.cents()));
    }
    if let Some(max) = filters.max_price() {
        statement
            .push(" AND p.price_cents <= ")
            .bind(Bind::Int(max.cents()));
    }
    match filters.in_stock {
        Some(true) => {
            statement.push(" AND p.stock > 0");
        }
        Some(false) => {
            statement.push(" AND p.stock = 0");
        }
        None => {}
    }
}

fn key_bind(key: SortKey, value: &KeyValue) -> Option<Bind> {
    match (key, value) {
        (SortKey::Id | SortKey::Price | SortKey::Stock, KeyValue::Int(v)) => Some(Bind::Int(*v)),
        (SortKey::CreatedAt | SortKey::UpdatedAt, KeyValue::Int(micros)) => {
            chrono::DateTime::from_timestamp_micros(*micros).map(|t| Bind::Time(Timestamp(t)))
        }
        (SortKey::Name, KeyValue::Text(v)) => Some(Bind::Text(v.clone())),
        (SortKey::Relevance, KeyValue::Score(v)) if v.is_finite() => Some(Bind::Float(*v)),
        _ => None,
    }
}

/// The page query. Keyset pages compare `(key, id)` as a row value, which both engines serve
/// from the `(key, id)` index, so a deep page costs what the first does.
fn page_statement(dialect: Dialect, query: &ListQuery) -> Result<Statement, StoreError> {
    let sort = query.sort;
    let relevance = sort.key == SortKey::Relevance;
    if relevance {
        return relevance_statement(dialect, query);
    }
    let mut statement = Statement::default();
    statement.push("SELECT ").push(COLUMNS);
    push_from_where(&mut statement, dialect, &query.filters, false);
    let direction = if sort.descending { "DESC" } else { "ASC" };
    let column = key_column(sort.key);
    match &query.page {
        Page::Keyset {
            after: Some(after), ..
        } => {
            let bind = key_bind(sort.key, &after.key).ok_or(StoreError::InvalidCursor)?;
            let comparison = if sort.descending { "<" } else { ">" };
            statement.push(&format!(" AND ({column}, p.id) {comparison} ("));
            statement
                .bind(bind)
                .push(", ")
                .bind(Bind::Int(after.id))
                .push(")");
        }
        Page::Keyset { after: None, .. } | Page::Offset { .. } => {}
    }
    statement.push(&format!(
        " ORDER BY {column} {direction}, p.id {direction} LIMIT "
    ));
    push_limit(&mut statement, &query.page);
    Ok(statement)
}

/// `LIMIT` (one more than a keyset page, to know whether another follows) and, for offset
/// pages, `OFFSET`.
fn push_limit(statement: &mut Statement, page: &Page) {
    match page {
        Page::Keyset { limit, .. } => {
            statement.bind(Bind::Int(*limit as i64 + 1));
        }
        Page::Offset { page, per_page } => {
            let offset = (page - 1).saturating_mul(*per_page).min(i64::MAX as u64) as i64;
            statement
                .bind(Bind::Int(*per_page as i64))
                .push(" OFFSET ")
                .bind(Bind::Int(offset));
        }
    }
}

/// Whether the search is the only filter: SQLite can then rank and count from the FTS index
/// alone, without touching the products table until the page is chosen.
fn search_only(filters: &Filters) -> bool {
    filters.q.is_some()
        && filters.min_price.is_none()
        && filters.max_price.is_none()
        && filters.in_stock.is_none()
}

/// A page in relevance order. Every match must be scored before the best can be known, so the
/// scoring reads ids and scores only (the FTS index alone on SQLite when nothing else filters),
/// the page's ids are chosen from those, and only the page's rows are read from `products`.
fn relevance_statement(dialect: Dialect, query: &ListQuery) -> Result<Statement, StoreError> {
    let mut statement = Statement::default();
    statement.push("WITH r AS MATERIALIZED (");
    if dialect == Dialect::Sqlite && search_only(&query.filters) {
        // bm25 weights: a word in the name counts most, then the sku, then the description.
        statement.push(
            "SELECT products_fts.rowid AS id, bm25(products_fts, 10.0, 1.0, 5.0) AS score \
             FROM products_fts WHERE products_fts MATCH ",
        );
        statement.bind(Bind::Text(fts5_match(&query.filters).unwrap_or_default()));
    } else {
        statement.push("SELECT p.id");
        push_from_where(&mut statement, dialect, &query.filters, true);
    }
    statement.push("), k AS (SELECT id, score FROM r WHERE TRUE");
    if let Page::Keyset {
        after: Some(after), ..
    } = &query.page
    {
        let bind = key_bind(SortKey::Relevance, &after.key).ok_or(StoreError::InvalidCursor)?;
        statement.push(" AND (score, id) > (");
        statement
            .bind(bind)
            .push(", ")
            .bind(Bind::Int(after.id))
            .push(")");
    }
    statement.push(" ORDER BY score, id LIMIT ");
    push_limit(&mut statement, &query.page);
    statement.push(") SELECT ").push(COLUMNS);
    statement.push(", k.score AS score FROM k JOIN products p ON p.id = k.id ORDER BY k.score, k.id");
    Ok(statement)
}

/// The statement behind `total`: a maintained count when the filters allow, else `count(*)`.
fn count_statement(dialect: Dialect, filters: &Filters) -> Statement {
    let mut statement = Statement::default();
    let only_stock_filter = filters.q.is_none() && filters.min_price.is_none() && filters.max_price.is_none();
    if only_stock_filter {
        statement.push(match filters.in_stock {
            None => "SELECT total FROM product_counts WHERE id = 1",
            Some(true) => "SELECT in_stock FROM product_counts WHERE id = 1",
            Some(false) => "SELECT total - in_stock FROM product_counts WHERE id = 1",
        });
    } else if dialect == Dialect::Sqlite && search_only(filters) {
        statement.push("SELECT count(*) FROM products_fts WHERE products_fts MATCH ");
        statement.bind(Bind::Text(fts5_match(filters).unwrap_or_default()));
    } else {
        statement.push("SELECT count(*)");
        push_from_where(&mut statement, dialect, filters, false);
    }
    statement
}

fn key_of(sort: Sort, product: &Product, score: Option<f64>) -> KeyValue {
    match sort.key {
        SortKey::Id => KeyValue::Int(product.id),
        SortKey::Name => KeyValue::Text(product.draft.name.as_str().to_owned()),
        SortKey::Price => KeyValue::Int(product.draft.price.cents()),
        SortKey::Stock => KeyValue::Int(product.draft.stock.units()),
        SortKey::CreatedAt => KeyValue::Int(product.created_at.timestamp_micros()),
        SortKey::UpdatedAt => KeyValue::Int(product.updated_at.timestamp_micros()),
        SortKey::Relevance => KeyValue::Score(score.unwrap_or_default()),
    }
}

impl Store {
    #[instrument(name = "db.list_products", skip_all, fields(sort = ?query.sort), err(level = "debug"))]
    pub async fn list_products(&self, query: &ListQuery) -> Result<Listed, StoreError> {
        let relevance = query.sort.key == SortKey::Relevance;
        if query.filters.q.as_ref().is_some_and(|q| q.matches_nothing()) {
            let total = matches!(query.page, Page::Offset { .. }).then_some(0);
            return Ok(Listed {
                items: Vec::new(),
                total,
                next: None,
            });
        }
        on_db!(self, |reader, _writer, dialect| {
            let page = page_statement(dialect, query)?;
            let rows = bind_all!(sqlx::query(sqlx::AssertSqlSafe(page.sql)), &page.binds)
                .fetch_all(reader)
                .await?;
            let mut items = Vec::with_capacity(rows.len());
            let mut last_score = None;
            for row in &rows {
                items.push(Product::try_from(ProductRow::from_row(row)?)?);
                if relevance {
                    last_score = Some(row.try_get::<f64, _>("score")?);
                }
            }
            let (total, next) = match &query.page {
                Page::Offset { .. } => {
                    let count = count_statement(dialect, &query.filters);
                    let total: i64 =
                        bind_all!(sqlx::query_scalar(sqlx::AssertSqlSafe(count.sql)), &count.binds)
                            .fetch_one(reader)
                            .await?;
                    (Some(total.max(0) as u64), None)
                }
                Page::Keyset { limit, .. } => {
                    let more = items.len() as u64 > *limit;
                    items.truncate(*limit as usize);
                    // The score of the last kept row: re-read it when the look-ahead row was dropped.
                    if more && relevance {
                        last_score = rows
                            .get(items.len() - 1)
                            .map(|row| row.try_get::<f64, _>("score"))
                            .transpose()?;
                    }
                    let next = match (more, items.last()) {
                        (true, Some(last)) => Some(After {
                            key: key_of(query.sort, last, last_score),
                            id: last.id,
                        }),
                        _ => None,
                    };
                    (None, next)
                }
            };
            Ok(Listed { items, total, next })
        })
    }
}
