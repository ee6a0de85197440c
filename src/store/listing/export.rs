//! The export's statement: the listing's filters (the same `FROM ... WHERE` as a listing), in
//! keyset pages by id.

#[allow(unused_imports)]
use super::*;

/// A parameter of an export page's statement.
#[derive(Debug, Clone)]
pub enum ExportBind {
    /// An integer.
    Int(i64),
    /// A text.
    Text(String),
}

/// The statement of the export page after id `after`, `limit` rows, and its parameters.
pub fn export_where(
    dialect: Dialect,
    filters: &Filters,
    after: i64,
    limit: i64,
) -> (String, Vec<ExportBind>) {
    let mut statement = Statement::default();
    statement.push("SELECT ").push(COLUMNS);
    push_from_where(&mut statement, dialect, filters, Reading::Sorted(SortKey::Id));
    statement.push(" AND p.id > ").bind(Bind::Int(after));
    statement.push(" ORDER BY p.id LIMIT ").bind(Bind::Int(limit));
    let binds = statement
        .binds
        .into_iter()
        .filter_map(|bind| match bind {
            Bind::Int(v) => Some(ExportBind::Int(v)),
            Bind::Text(v) => Some(ExportBind::Text(v)),
            // The filters bind only integers and text.
            Bind::Float(_) | Bind::Time(_) => None,
        })
        .collect();
    (statement.sql, binds)
}
