//! The count behind `total`: maintained counts where they answer, a count otherwise, and which
//! pages cost a bounded amount.

#[allow(unused_imports)]
use super::*;

/// The statement behind `total`: a maintained count when the filters allow (none or `in_stock`
/// only: one row; price and `in_stock`: a sum over the prices in the range), else `count(*)`.
pub(super) fn count_statement(dialect: Dialect, filters: &Filters) -> Statement {
    let mut statement = Statement::default();
    push_count(&mut statement, dialect, filters);
    statement
}

/// Whether `total` is read from the maintained counts rather than counted: one row, or a sum
/// over the prices in the range, whatever the catalogue's size.
pub(super) fn maintained_count(filters: &Filters) -> bool {
    filters.q.is_none()
}

/// Appends [`count_statement`]'s query to `statement` (its parameters numbered after the ones
/// already there), so it can also be a scalar subquery of the page's statement.
pub(super) fn push_count(statement: &mut Statement, dialect: Dialect, filters: &Filters) {
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
        push_from_where(statement, dialect, filters, Reading::Unordered);
    }
}

/// `, (<the maintained count>) AS total` after the page's columns: an uncorrelated scalar
/// subquery, which both engines evaluate once per statement (SQLite's `ONCE`, PostgreSQL's
/// InitPlan), so an offset page and its total are one statement on one connection instead of
/// two.
pub(super) fn push_total_column(statement: &mut Statement, dialect: Dialect, filters: &Filters) {
    statement.push(", (");
    push_count(statement, dialect, filters);
    statement.push(") AS total");
}

/// Offset pages whose last row is at most this deep are bounded in cost (see [`bounded_cost`]).
pub(super) const BOUNDED_DEPTH: u64 = 10_000;

/// Whether a page's statement costs at most a bounded amount whatever the catalogue holds: with
/// no filter every row qualifies, so the statement walks the sort key's `(key, id)` index for
/// exactly the rows it returns (a keyset page: `limit + 1`; an offset page: the rows it skips
/// and its own, at most [`BOUNDED_DEPTH`]) and reads the page's rows by id. Any filter can make
/// it walk the whole index to fill a page, and a search scores every match.
pub(super) fn bounded_cost(query: &ListQuery) -> bool {
    let unfiltered = query.filters.is_empty() && query.sort.key != SortKey::Relevance;
    unfiltered
        && match query.page {
            Page::Keyset { .. } => true,
            Page::Offset { page, per_page } => page.saturating_mul(per_page) <= BOUNDED_DEPTH,
        }
}
