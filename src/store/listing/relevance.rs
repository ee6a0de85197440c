//! Relevance order: the scoring statement, and a search split into id ranges scored at once
//! then merged.

#[allow(unused_imports)]
use super::*;

/// Whether the search is the only filter: SQLite can then rank and count from the FTS index
/// alone, without touching the products table until the page is chosen.
pub(super) fn search_only(filters: &Filters) -> bool {
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
pub(super) fn relevance_statement(
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
        push_from_where(&mut statement, dialect, &query.filters, Reading::Scored);
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
pub(super) struct RelevancePart {
    pub(super) first_id: i64,
    pub(super) last_id: i64,
    pub(super) top: i64,
}

/// Deeper offset pages are not split: each part would return every row down to the offset.
pub(super) const MAX_SPLIT_WINDOW: u64 = 1_000;

/// The parts a relevance page is scored in, or `None` for one statement.
pub(super) fn relevance_parts(page: &Page, parts: usize, max_id: i64) -> Option<Vec<RelevancePart>> {
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
pub(super) fn page_window(page: &Page) -> (u64, u64) {
    match page {
        Page::Keyset { limit, .. } => (0, limit + 1),
        Page::Offset { page, per_page } => ((page - 1).saturating_mul(*per_page), *per_page),
    }
}
