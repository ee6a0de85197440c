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
/// One page as read from the database.
#[derive(Debug)]
pub struct Listed {
    /// The page's products, in order.
    pub items: Vec<Product>,
    /// All matches, for offset pages.
    pub total: Option<u64>,
    /// Where the next keyset page starts; `None` on the last page.
    pub next: Option<After>,
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

mod count;
mod cursors;
mod export;
mod relevance;
mod shapes;
mod sql;

use count::*;
use cursors::*;
pub use export::{ExportBind, export_where};
use relevance::*;
use shapes::*;
use sql::*;

impl Store {
    /// One page of the catalogue for `query` (offset or keyset, any sort, filters, search),
    /// with its total when the query asks for one and the position after its last row.
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
    fn sqlite_out_of_stock_pages_name_the_partial_index_of_their_sort_key() {
        let out_of_stock = Filters {
            in_stock: Some(false),
            ..Filters::default()
        };
        let statement = |dialect, filters: &Filters, key, page| {
            let query = ListQuery {
                sort: Sort {
                    key,
                    descending: true,
                },
                ..query(filters.clone(), page)
            };
            page_statement(dialect, &query, false).unwrap().sql
        };
        let second = Page::Offset {
            page: 2,
            per_page: 20,
        };
        for (key, index) in [
            (SortKey::Name, "products_out_of_stock_name_idx"),
            (SortKey::Price, "products_out_of_stock_price_idx"),
            (SortKey::CreatedAt, "products_out_of_stock_created_at_idx"),
            (SortKey::UpdatedAt, "products_out_of_stock_updated_at_idx"),
        ] {
            for page in [keyset(20), second.clone()] {
                let sql = statement(Dialect::Sqlite, &out_of_stock, key, page.clone());
                assert!(
                    sql.contains(&format!("FROM products p INDEXED BY {index} WHERE")),
                    "{sql}"
                );
                let sql = statement(Dialect::Postgres, &out_of_stock, key, page.clone());
                assert!(!sql.contains("INDEXED BY"), "{sql}");
                let sql = statement(Dialect::Sqlite, &Filters::default(), key, page);
                assert!(!sql.contains("INDEXED BY"), "{sql}");
            }
        }
        for key in [SortKey::Id, SortKey::Stock] {
            let sql = statement(Dialect::Sqlite, &out_of_stock, key, keyset(20));
            assert!(!sql.contains("INDEXED BY"), "{sql}");
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
