//! The statement builder: SQL text with its parameters in order, and the fragments every
//! shape shares (columns, filters, the sort key).

#[allow(unused_imports)]
use super::*;

pub(super) const COLUMNS: &str = crate::store::products::product_columns!("p.");

#[derive(Debug, Clone)]
pub(super) enum Bind {
    Int(i64),
    Text(String),
    Float(f64),
    Time(Timestamp),
}

/// A statement under construction: SQL text plus its parameters in order.
#[derive(Debug, Default)]
pub(super) struct Statement {
    pub(super) sql: String,
    pub(super) binds: Vec<Bind>,
}

impl Statement {
    pub(super) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    pub(super) fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        let placeholder = format!("${}", self.binds.len());
        self.sql.push_str(&placeholder);
        self
    }
}

pub(super) fn key_column(key: SortKey) -> &'static str {
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
pub(super) fn fts5_match(filters: &Filters) -> Option<String> {
    filters.q.as_ref().map(|q| {
        q.terms()
            .map(|term| format!("\"{}\"", term.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// How a statement reads the rows that pass the filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reading {
    /// In no particular order (a count).
    Unordered,
    /// In the order of a sort key (a page, an export).
    Sorted(SortKey),
    /// Scored for relevance: with a search, `score` (lower is more relevant) is selectable.
    Scored,
}

/// The index SQLite must be told to read an out-of-stock page from. Its planner estimates
/// `stock = 0` at the average number of products per stock level (about 10,000 at 1M) and so
/// prefers `products_stock_idx` and a sort of every out-of-stock product (100,000 of them at
/// 1M: 148 ms a page) to the partial index that holds them in the page's order (migration 0031:
/// under 1 ms). PostgreSQL's statistics see how common 0 is and choose the partial index alone.
/// A search reads through the full-text index, and the id and stock orders are
/// `products_stock_idx`'s own, so those are left to the planner.
fn sqlite_out_of_stock_index(filters: &Filters, reading: Reading) -> Option<&'static str> {
    if filters.in_stock != Some(false) || filters.q.is_some() {
        return None;
    }
    match reading {
        Reading::Sorted(SortKey::Name) => Some("products_out_of_stock_name_idx"),
        Reading::Sorted(SortKey::Price) => Some("products_out_of_stock_price_idx"),
        Reading::Sorted(SortKey::CreatedAt) => Some("products_out_of_stock_created_at_idx"),
        Reading::Sorted(SortKey::UpdatedAt) => Some("products_out_of_stock_updated_at_idx"),
        Reading::Sorted(SortKey::Id | SortKey::Stock | SortKey::Relevance)
        | Reading::Unordered
        | Reading::Scored => None,
    }
}

/// `FROM ... WHERE ...` for the filters, read as `reading` says.
pub(super) fn push_from_where(
    statement: &mut Statement,
    dialect: Dialect,
    filters: &Filters,
    reading: Reading,
) {
    let with_score = reading == Reading::Scored;
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
        (None, Dialect::Sqlite) => {
            statement.push(" FROM products p");
            if let Some(index) = sqlite_out_of_stock_index(filters, reading) {
                statement.push(" INDEXED BY ").push(index);
            }
            statement.push(" WHERE TRUE");
        }
        (None, Dialect::Postgres) => {
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
pub(super) fn push_price_range(statement: &mut Statement, column: &str, filters: &Filters) {
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

pub(super) fn key_bind(key: SortKey, value: &KeyValue) -> Option<Bind> {
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
