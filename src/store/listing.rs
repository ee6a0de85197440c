//! Product listings: filters, sorts with the id tie-break, offset and keyset pages, full-text
//! search, and the count behind `total`.
//!
//! The statement is assembled from fixed fragments; every value a client sent is a bound
//! parameter. Only full-text search differs by dialect (FTS5 vs tsvector).

use sqlx::{FromRow, Row};
use tracing::instrument;

use super::deadline::FetchWithin;
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
    push_price_range(statement, "p.price_cents", filters);
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

/// `AND column >= min AND column <= max` for the price filters given.
fn push_price_range(statement: &mut Statement, column: &str, filters: &Filters) {
    if let Some(min) = filters.min_price() {
        statement
            .push(&format!(" AND {column} >= "))
            .bind(Bind::Int(min.cents()));
    }
    if let Some(max) = filters.max_price() {
        statement
            .push(&format!(" AND {column} <= "))
            .bind(Bind::Int(max.cents()));
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

/// The page query, sorted by a column (relevance pages are [`relevance_statement`]). Keyset
/// pages compare `(key, id)` as a row value, which both engines serve from the `(key, id)` index,
/// so a deep page costs what the first does (SQLite needs help inside a long run of equal keys:
/// [`sqlite_keyset_after`]).
///
/// With `with_total` (offset pages under [`maintained_count`] filters), every row also carries
/// the page's `total` ([`push_total_column`]).
fn page_statement(dialect: Dialect, query: &ListQuery, with_total: bool) -> Result<Statement, StoreError> {
    let sort = query.sort;
    if let (
        Dialect::Sqlite,
        Page::Keyset {
            after: Some(after), ..
        },
    ) = (dialect, &query.page)
        && sort.key != SortKey::Id
    {
        return sqlite_keyset_after(query, after);
    }
    if let Page::Offset { page: 2.., .. } = query.page {
        return deep_offset_statement(dialect, query, with_total);
    }
    let mut statement = Statement::default();
    statement.push("SELECT ").push(COLUMNS);
    if with_total {
        push_total_column(&mut statement, dialect, &query.filters);
    }
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

/// An offset page past the first. OFFSET walks every row before the page; walking them in the
/// sort key's index alone (the ids, and the price and stock the filters read, are in it) and
/// reading only the page's rows from the table costs a fraction of reading each skipped row
/// (PostgreSQL, page 45,000 by price: a heap fetch for each of 900,000 skipped rows).
fn deep_offset_statement(
    dialect: Dialect,
    query: &ListQuery,
    with_total: bool,
) -> Result<Statement, StoreError> {
    let sort = query.sort;
    let column = key_column(sort.key);
    let direction = if sort.descending { "DESC" } else { "ASC" };
    let order = format!(" ORDER BY {column} {direction}, p.id {direction}");
    let mut statement = Statement::default();
    statement.push("SELECT ").push(COLUMNS);
    if with_total {
        push_total_column(&mut statement, dialect, &query.filters);
    }
    statement.push(" FROM products p JOIN (SELECT p.id");
    push_from_where(&mut statement, dialect, &query.filters, false);
    statement.push(&order).push(" LIMIT ");
    push_limit(&mut statement, &query.page);
    statement.push(") AS page ON page.id = p.id").push(&order);
    Ok(statement)
}

/// A keyset page after a cursor on SQLite, sorted by a column other than the id. SQLite bounds
/// an index range by the row value `(key, id) > (k, i)` on the key alone (the id is the rowid),
/// so a cursor inside a long run of equal keys (100,000 products out of stock) would step over
/// every row of the run before its own. Written instead as the rest of the run (`key = k AND
/// id > i`: a seek on both index columns) followed by the keys after it (a range on the key),
/// each already in index order and cut at the page size, then merged: a page costs the same
/// wherever the cursor is.
fn sqlite_keyset_after(query: &ListQuery, after: &After) -> Result<Statement, StoreError> {
    let sort = query.sort;
    let column = key_column(sort.key);
    let (direction, comparison) = if sort.descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    let key = key_bind(sort.key, &after.key).ok_or(StoreError::InvalidCursor)?;
    let mut statement = Statement::default();
    statement.push("SELECT * FROM (SELECT ").push(COLUMNS);
    push_from_where(&mut statement, Dialect::Sqlite, &query.filters, false);
    statement
        .push(&format!(" AND {column} = "))
        .bind(key.clone())
        .push(&format!(" AND p.id {comparison} "))
        .bind(Bind::Int(after.id))
        .push(&format!(" ORDER BY p.id {direction} LIMIT "));
    push_limit(&mut statement, &query.page);
    statement.push(") UNION ALL SELECT * FROM (SELECT ").push(COLUMNS);
    push_from_where(&mut statement, Dialect::Sqlite, &query.filters, false);
    statement
        .push(&format!(" AND {column} {comparison} "))
        .bind(key)
        .push(&format!(
            " ORDER BY {column} {direction}, p.id {direction} LIMIT "
        ));
    push_limit(&mut statement, &query.page);
    // A compound select orders by its result columns: the key's name without the table alias.
    let result_column = column.trim_start_matches("p.");
    statement.push(&format!(
        ") ORDER BY {result_column} {direction}, id {direction} LIMIT "
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
    // Every filter named, so a new one must be decided on here (the compiler says so).
    let Filters {
        q,
        min_price,
        max_price,
        in_stock,
    } = filters;
    q.is_some() && min_price.is_none() && max_price.is_none() && in_stock.is_none()
}

/// A page in relevance order. Every match must be scored before the best can be known, so the
/// scoring reads ids and scores only (the FTS index alone on SQLite when nothing else filters),
/// the page's ids are chosen from those, and only the page's rows are read from `products`.
///
/// With a `part`, only the matches in its id range are scored and its `top` best returned (see
/// [`RelevancePart`]). With `with_total`, every row also carries the number of matches scored.
fn relevance_statement(
    dialect: Dialect,
    query: &ListQuery,
    part: Option<RelevancePart>,
    with_total: bool,
) -> Result<Statement, StoreError> {
    let mut statement = Statement::default();
    statement.push("WITH r AS MATERIALIZED (");
    let id_column = if dialect == Dialect::Sqlite && search_only(&query.filters) {
        // bm25 weights: a word in the name counts most, then the sku, then the description.
        statement.push(
            "SELECT products_fts.rowid AS id, bm25(products_fts, 10.0, 1.0, 5.0) AS score \
             FROM products_fts WHERE products_fts MATCH ",
        );
        statement.bind(Bind::Text(fts5_match(&query.filters).unwrap_or_default()));
        "products_fts.rowid"
    } else {
        statement.push("SELECT p.id");
        push_from_where(&mut statement, dialect, &query.filters, true);
        "p.id"
    };
    if let Some(part) = part {
        statement
            .push(&format!(" AND {id_column} BETWEEN "))
            .bind(Bind::Int(part.first_id))
            .push(" AND ")
            .bind(Bind::Int(part.last_id));
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
    match part {
        Some(part) => {
            statement.bind(Bind::Int(part.top));
        }
        None => push_limit(&mut statement, &query.page),
    }
    statement.push(")");
    // Counted once, from the scored matches; a scalar subquery in the select list would be
    // evaluated again for every row of the page.
    if with_total {
        statement.push(", t AS MATERIALIZED (SELECT count(*) AS total FROM r)");
    }
    statement
        .push(" SELECT ")
        .push(COLUMNS)
        .push(", k.score AS score");
    statement.push(if with_total {
        ", t.total AS total FROM k JOIN products p ON p.id = k.id CROSS JOIN t"
    } else {
        " FROM k JOIN products p ON p.id = k.id"
    });
    statement.push(" ORDER BY k.score, k.id");
    Ok(statement)
}

/// Scoring every match costs about a microsecond each on SQLite (bm25 looks up each document's
/// length), so a search matching 1% of a million products spends ~10 ms there. SQLite runs a
/// statement on one core; split into id ranges scored at once on separate reader connections,
/// the same search takes a fraction of that. Each part returns its `top` best, which hold the
/// page: the merge keeps the best of all parts.
#[derive(Debug, Clone, Copy)]
struct RelevancePart {
    first_id: i64,
    last_id: i64,
    top: i64,
}

/// Deeper offset pages are not split: each part would return every row down to the offset.
const MAX_SPLIT_WINDOW: u64 = 1_000;

/// The parts a relevance page is scored in, or `None` for one statement.
fn relevance_parts(page: &Page, parts: usize, max_id: i64) -> Option<Vec<RelevancePart>> {
    let (skip, take) = page_window(page);
    let top = skip.checked_add(take).filter(|top| *top <= MAX_SPLIT_WINDOW)?;
    if parts < 2 || max_id < parts as i64 {
        return None;
    }
    let width = max_id / parts as i64 + 1;
    Some(
        (0..parts as i64)
            .map(|i| RelevancePart {
                first_id: if i == 0 { i64::MIN } else { i * width + 1 },
                // The last range is open: a product created meanwhile still has a part.
                last_id: if i == parts as i64 - 1 {
                    i64::MAX
                } else {
                    (i + 1) * width
                },
                top: top as i64,
            })
            .collect(),
    )
}

/// The rows of the merged order a page takes: how many it skips, then how many it keeps (a
/// keyset page keeps one more, to know whether another page follows).
fn page_window(page: &Page) -> (u64, u64) {
    match page {
        Page::Keyset { limit, .. } => (0, limit + 1),
        Page::Offset { page, per_page } => ((page - 1).saturating_mul(*per_page), *per_page),
    }
}

/// The statement behind `total`: a maintained count when the filters allow (none or `in_stock`
/// only: one row; price and `in_stock`: a sum over the prices in the range), else `count(*)`.
fn count_statement(dialect: Dialect, filters: &Filters) -> Statement {
    let mut statement = Statement::default();
    push_count(&mut statement, dialect, filters);
    statement
}

/// Whether `total` is read from the maintained counts rather than counted: one row, or a sum
/// over the prices in the range, whatever the catalogue's size.
fn maintained_count(filters: &Filters) -> bool {
    filters.q.is_none()
}

/// Appends [`count_statement`]'s query to `statement` (its parameters numbered after the ones
/// already there), so it can also be a scalar subquery of the page's statement.
fn push_count(statement: &mut Statement, dialect: Dialect, filters: &Filters) {
    // Every filter named, so a new one cannot be left out of the count (a wrong total, silently):
    // the compiler asks for it here.
    let Filters {
        q,
        min_price,
        max_price,
        in_stock,
    } = filters;
    let column = match in_stock {
        None => "total",
        Some(true) => "in_stock",
        Some(false) => "total - in_stock",
    };
    if q.is_none() && min_price.is_none() && max_price.is_none() {
        statement.push(&format!("SELECT {column} FROM product_counts WHERE id = 1"));
    } else if q.is_none() {
        // sum() of nothing is NULL, and a numeric on PostgreSQL: both made a plain integer.
        statement.push(&format!(
            "SELECT CAST(coalesce(sum({column}), 0) AS BIGINT) FROM product_price_counts WHERE TRUE"
        ));
        push_price_range(statement, "price_cents", filters);
    } else if dialect == Dialect::Sqlite && search_only(filters) {
        statement.push("SELECT count(*) FROM products_fts WHERE products_fts MATCH ");
        statement.bind(Bind::Text(fts5_match(filters).unwrap_or_default()));
    } else {
        statement.push("SELECT count(*)");
        push_from_where(statement, dialect, filters, false);
    }
}

/// `, (<the maintained count>) AS total` after the page's columns: an uncorrelated scalar
/// subquery, which both engines evaluate once per statement (SQLite's `ONCE`, PostgreSQL's
/// InitPlan), so an offset page and its total are one statement on one connection instead of
/// two.
fn push_total_column(statement: &mut Statement, dialect: Dialect, filters: &Filters) {
    statement.push(", (");
    push_count(statement, dialect, filters);
    statement.push(") AS total");
}

/// Offset pages whose last row is at most this deep are bounded in cost (see [`bounded_cost`]).
const BOUNDED_DEPTH: u64 = 10_000;

/// Whether a page's statement costs at most a bounded amount whatever the catalogue holds: with
/// no filter every row qualifies, so the statement walks the sort key's `(key, id)` index for
/// exactly the rows it returns (a keyset page: `limit + 1`; an offset page: the rows it skips
/// and its own, at most [`BOUNDED_DEPTH`]) and reads the page's rows by id. Any filter can make
/// it walk the whole index to fill a page, and a search scores every match.
fn bounded_cost(query: &ListQuery) -> bool {
    let unfiltered = query.filters.is_empty() && query.sort.key != SortKey::Relevance;
    unfiltered
        && match query.page {
            Page::Keyset { .. } => true,
            Page::Offset { page, per_page } => page.saturating_mul(per_page) <= BOUNDED_DEPTH,
        }
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
        let offset_page = matches!(query.page, Page::Offset { .. });
        if query.filters.q.as_ref().is_some_and(|q| q.matches_nothing()) {
            return Ok(Listed {
                items: Vec::new(),
                total: offset_page.then_some(0),
                next: None,
            });
        }
        on_db!(self, |reader, _writer, dialect| {
            // Every listing statement whose cost grows with the catalogue is bounded in time: its
            // request would have given up. One whose cost is bounded by its shape runs as is (on
            // SQLite the deadline costs two round trips to the connection's thread and a task).
            let fetch = |statement: Statement, guarded: bool| {
                let query = bind_all!(sqlx::query(sqlx::AssertSqlSafe(statement.sql)), &statement.binds);
                async move {
                    if guarded {
                        reader.fetch_all_within(query, self.statement_timeout).await
                    } else {
                        Ok(query.fetch_all(reader).await?)
                    }
                }
            };
            let page_guarded = !bounded_cost(query);
            let count = || async {
                let guarded = !maintained_count(&query.filters);
                let rows = fetch(count_statement(dialect, &query.filters), guarded).await?;
                let total: i64 = match rows.first() {
                    Some(row) => row.try_get(0)?,
                    None => 0,
                };
                Ok::<_, StoreError>(total.max(0) as u64)
            };
            let (rows, total) = if !relevance {
                if offset_page && maintained_count(&query.filters) {
                    // The count is a row or two of the maintained counts: read with the page, in
                    // one statement, rather than on a second connection at once.
                    let rows = fetch(page_statement(dialect, query, true)?, page_guarded).await?;
                    let total = match rows.first() {
                        Some(row) => row.try_get::<i64, _>("total")?.max(0) as u64,
                        // Past the last page: no row carries the count.
                        None => count().await?,
                    };
                    (rows, Some(total))
                } else if offset_page {
                    // The page and a count of the matches are independent reads: run them at once.
                    let page = fetch(page_statement(dialect, query, false)?, page_guarded);
                    let (rows, total) = tokio::try_join!(page, count())?;
                    (rows, Some(total))
                } else {
                    (
                        fetch(page_statement(dialect, query, false)?, page_guarded).await?,
                        None,
                    )
                }
            } else {
                let parts = match self.search_parts {
                    parts if parts > 1 => {
                        let max_id: Option<i64> = sqlx::query_scalar("SELECT max(id) FROM products")
                            .fetch_one(reader)
                            .await?;
                        let max_id = max_id.unwrap_or(0);
                        (max_id >= self.search_split_min_id)
                            .then(|| relevance_parts(&query.page, parts, max_id))
                            .flatten()
                    }
                    _ => None,
                };
                match parts {
                    None => {
                        let rows =
                            fetch(relevance_statement(dialect, query, None, offset_page)?, true).await?;
                        let total = match rows.first() {
                            _ if !offset_page => None,
                            Some(row) => Some(row.try_get::<i64, _>("total")?.max(0) as u64),
                            // Past the last page: no row carries the count.
                            None => Some(count().await?),
                        };
                        (rows, total)
                    }
                    Some(parts) => {
                        let statements = parts
                            .into_iter()
                            .map(|part| relevance_statement(dialect, query, Some(part), offset_page))
                            .collect::<Result<Vec<_>, _>>()?;
                        let results = futures_util::future::try_join_all(
                            statements.into_iter().map(|s| fetch(s, true)),
                        )
                        .await?;
                        let mut total = 0;
                        let mut scored = Vec::new();
                        for rows in results {
                            if let Some(first) = rows.first().filter(|_| offset_page) {
                                total += first.try_get::<i64, _>("total")?.max(0) as u64;
                            }
                            for row in rows {
                                scored.push((
                                    row.try_get::<f64, _>("score")?,
                                    row.try_get::<i64, _>("id")?,
                                    row,
                                ));
                            }
                        }
                        // The order the single statement would give: score, then id.
                        scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                        let (skip, take) = page_window(&query.page);
                        let rows = scored
                            .into_iter()
                            .skip(skip as usize)
                            .take(take as usize)
                            .map(|(_, _, row)| row)
                            .collect::<Vec<_>>();
                        (rows, offset_page.then_some(total))
                    }
                }
            };
            let mut items = Vec::with_capacity(rows.len());
            let mut last_score = None;
            for row in &rows {
                items.push(Product::try_from(ProductRow::from_row(row)?)?);
                if relevance {
                    last_score = Some(row.try_get::<f64, _>("score")?);
                }
            }
            let next = match &query.page {
                Page::Offset { .. } => None,
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
                    match (more, items.last()) {
                        (true, Some(last)) => Some(After {
                            key: key_of(query.sort, last, last_score),
                            id: last.id,
                        }),
                        _ => None,
                    }
                }
            };
            Ok(Listed { items, total, next })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyset(limit: u64) -> Page {
        Page::Keyset { limit, after: None }
    }

    fn query(filters: Filters, page: Page) -> ListQuery {
        ListQuery {
            filters,
            sort: Sort {
                key: SortKey::Price,
                descending: true,
            },
            page,
        }
    }

    #[test]
    fn only_unfiltered_pages_near_the_start_skip_the_deadline() {
        let offset = |page, per_page| Page::Offset { page, per_page };
        assert!(bounded_cost(&query(Filters::default(), keyset(100))));
        assert!(bounded_cost(&query(Filters::default(), offset(100, 100))));
        assert!(!bounded_cost(&query(Filters::default(), offset(101, 100))));
        assert!(!bounded_cost(&query(Filters::default(), offset(u64::MAX, 100))));
        let in_stock = Filters {
            in_stock: Some(false),
            ..Filters::default()
        };
        assert!(!bounded_cost(&query(in_stock, keyset(20))));
        let priced = Filters {
            min_price: Some(100),
            ..Filters::default()
        };
        assert!(!bounded_cost(&query(priced, offset(1, 20))));
    }

    #[test]
    fn the_total_column_is_numbered_before_the_page_parameters() {
        let filters = Filters {
            min_price: Some(100),
            ..Filters::default()
        };
        for page in [1, 3] {
            let statement = page_statement(
                Dialect::Postgres,
                &query(filters.clone(), Page::Offset { page, per_page: 20 }),
                true,
            )
            .unwrap();
            assert!(
                statement.sql.contains(
                    "(SELECT CAST(coalesce(sum(total), 0) AS BIGINT) FROM product_price_counts WHERE TRUE AND price_cents >= $1) AS total"
                ),
                "{}",
                statement.sql
            );
            assert!(statement.sql.contains("p.price_cents >= $2"), "{}", statement.sql);
            assert_eq!(statement.binds.len(), 4);
        }
    }

    #[test]
    fn relevance_parts_cover_every_id_once() {
        for (parts, max_id) in [(2, 2), (2, 1_000_000), (3, 10), (4, 7)] {
            let split = relevance_parts(&keyset(20), parts, max_id).unwrap();
            assert_eq!(split.len(), parts);
            assert_eq!(split[0].first_id, i64::MIN);
            assert_eq!(split[parts - 1].last_id, i64::MAX);
            for pair in split.windows(2) {
                assert_eq!(pair[0].last_id + 1, pair[1].first_id, "{split:?}");
                assert!(pair[0].first_id <= pair[0].last_id);
            }
            assert!(split.iter().all(|part| part.top == 21));
        }
    }

    #[test]
    fn a_part_returns_every_row_down_to_the_end_of_an_offset_page() {
        let page = Page::Offset {
            page: 3,
            per_page: 20,
        };
        assert_eq!(page_window(&page), (40, 20));
        assert!(
            relevance_parts(&page, 2, 100)
                .unwrap()
                .iter()
                .all(|part| part.top == 60)
        );
    }

    #[test]
    fn small_catalogues_single_connections_and_deep_offsets_are_not_split() {
        assert!(relevance_parts(&keyset(20), 1, 1_000_000).is_none());
        assert!(relevance_parts(&keyset(20), 2, 1).is_none());
        let deep = Page::Offset {
            page: 51,
            per_page: 20,
        };
        assert!(relevance_parts(&deep, 2, 1_000_000).is_none());
        let far = Page::Offset {
            page: u64::MAX,
            per_page: 100,
        };
        assert!(relevance_parts(&far, 2, 1_000_000).is_none());
    }
}
