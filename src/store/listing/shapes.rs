//! The statement shapes of a page: offset, deep offset, keyset (and SQLite's keyset after a
//! position).

#[allow(unused_imports)]
use super::*;

/// The page query, sorted by a column (relevance pages are [`relevance_statement`]). Keyset
/// pages compare `(key, id)` as a row value, which both engines serve from the `(key, id)` index,
/// so a deep page costs what the first does (SQLite needs help inside a long run of equal keys:
/// [`sqlite_keyset_after`]).
///
/// With `with_total` (offset pages under [`maintained_count`] filters), every row also carries
/// the page's `total` ([`push_total_column`]).
pub(super) fn page_statement(
    dialect: Dialect,
    query: &ListQuery,
    with_total: bool,
) -> Result<Statement, StoreError> {
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
    push_from_where(&mut statement, dialect, &query.filters, Reading::Sorted(sort.key));
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
pub(super) fn deep_offset_statement(
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
    push_from_where(&mut statement, dialect, &query.filters, Reading::Sorted(sort.key));
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
pub(super) fn sqlite_keyset_after(query: &ListQuery, after: &After) -> Result<Statement, StoreError> {
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
    push_from_where(
        &mut statement,
        Dialect::Sqlite,
        &query.filters,
        Reading::Sorted(sort.key),
    );
    statement
        .push(&format!(" AND {column} = "))
        .bind(key.clone())
        .push(&format!(" AND p.id {comparison} "))
        .bind(Bind::Int(after.id))
        .push(&format!(" ORDER BY p.id {direction} LIMIT "));
    push_limit(&mut statement, &query.page);
    statement.push(") UNION ALL SELECT * FROM (SELECT ").push(COLUMNS);
    push_from_where(
        &mut statement,
        Dialect::Sqlite,
        &query.filters,
        Reading::Sorted(sort.key),
    );
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
pub(super) fn push_limit(statement: &mut Statement, page: &Page) {
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
