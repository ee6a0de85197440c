//! Bulk import and export of the catalogue: options, what becomes of each row, and the result
//! a job reports.

use serde::{Deserialize, Serialize};

use super::product::ProductDraft;

/// The file formats of imports and exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// RFC 4180 CSV with a header row.
    Csv,
    /// JSON Lines: one object per line.
    Jsonl,
}

impl FileFormat {
    /// The format named `text` (`csv`, `jsonl`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "csv" => Some(FileFormat::Csv),
            "jsonl" => Some(FileFormat::Jsonl),
            _ => None,
        }
    }

    /// The media type of a file of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            FileFormat::Csv => "text/csv; charset=utf-8",
            FileFormat::Jsonl => "application/x-ndjson",
        }
    }
}

/// How rows meet the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportMode {
    /// Match by sku (ignoring case): update what exists, create what does not.
    Upsert,
    /// Create every row.
    Create,
}

/// What an invalid row does to the import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Any invalid row: nothing is written.
    Abort,
    /// Valid rows are written, invalid ones reported.
    Skip,
}

/// An import as asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOptions {
    /// The file's format.
    pub format: FileFormat,
    /// Upsert or create.
    pub mode: ImportMode,
    /// Abort or skip.
    pub on_error: OnError,
    /// Validate and count only.
    pub dry_run: bool,
}

/// The columns (CSV) or keys (JSON Lines) of an import row.
pub const COLUMNS: [&str; 5] = ["sku", "name", "description", "price", "stock"];
/// The columns a CSV header must name.
pub const REQUIRED_COLUMNS: [&str; 3] = ["name", "price", "stock"];

/// One problem of one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// The row's line in the file (a CSV header is line 1).
    pub line: u64,
    /// The column, or `row` for the row as a whole.
    pub field: String,
    /// A stable code.
    pub code: String,
    /// For people.
    pub message: String,
}

/// A valid row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// Its line in the file.
    pub line: u64,
    /// The product it describes.
    pub draft: ProductDraft,
}

/// What a valid row does to the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// A new product.
    Create,
    /// An existing product (matched by sku) gets changed fields.
    Update,
    /// An existing product already holds exactly this.
    Unchanged,
    /// `create` mode, and the sku is taken.
    Taken,
}

/// What a valid row does, given the product its sku matches (if any).
pub fn plan(mode: ImportMode, draft: &ProductDraft, existing: Option<&ProductDraft>) -> Plan {
    match (mode, existing) {
        (_, None) => Plan::Create,
        (ImportMode::Create, Some(_)) => Plan::Taken,
        (ImportMode::Upsert, Some(current)) if current == draft => Plan::Unchanged,
        (ImportMode::Upsert, Some(_)) => Plan::Update,
    }
}

/// The error a `Taken` row reports.
pub fn taken(line: u64) -> RowError {
    RowError {
        line,
        field: "sku".into(),
        code: "taken".into(),
        message: "already used by another product".into(),
    }
}

/// An import's result: counts of every row, the first [`ImportResult::MAX_ERRORS`] errors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportResult {
    /// Data rows read.
    pub rows: u64,
    /// Products created (or that would be, in a dry run).
    pub created: u64,
    /// Products changed.
    pub updated: u64,
    /// Rows that matched a product holding exactly the same.
    pub unchanged: u64,
    /// Rows refused.
    pub invalid: u64,
    /// The first errors, in file order.
    pub errors: Vec<RowError>,
}

impl ImportResult {
    /// How many errors are listed; all are counted.
    pub const MAX_ERRORS: usize = 100;

    /// Counts a row refused for `errors` (one or more problems of the same row).
    pub fn reject(&mut self, errors: impl IntoIterator<Item = RowError>) {
        self.rows += 1;
        self.invalid += 1;
        for error in errors {
            if self.errors.len() < Self::MAX_ERRORS {
                self.errors.push(error);
            }
        }
    }

    /// Counts a valid row by what it did.
    pub fn count(&mut self, line: u64, plan: Plan) {
        match plan {
            Plan::Create => {
                self.rows += 1;
                self.created += 1;
            }
            Plan::Update => {
                self.rows += 1;
                self.updated += 1;
            }
            Plan::Unchanged => {
                self.rows += 1;
                self.unchanged += 1;
            }
            Plan::Taken => self.reject([taken(line)]),
        }
    }

    /// Whether every row was accepted.
    pub fn all_accepted(&self) -> bool {
        self.invalid == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Price;
    use crate::domain::product::{ProductName, Stock};

    fn draft(name: &str) -> ProductDraft {
        ProductDraft {
            name: ProductName::parse(name).unwrap(),
            description: None,
            sku: None,
            price: Price::from_cents(100).unwrap(),
            stock: Stock::new(1).unwrap(),
        }
    }

    #[test]
    fn plan_compares_with_the_matched_product() {
        let a = draft("a");
        assert_eq!(plan(ImportMode::Upsert, &a, None), Plan::Create);
        assert_eq!(plan(ImportMode::Upsert, &a, Some(&a)), Plan::Unchanged);
        assert_eq!(plan(ImportMode::Upsert, &a, Some(&draft("b"))), Plan::Update);
        assert_eq!(plan(ImportMode::Create, &a, Some(&a)), Plan::Taken);
    }

    #[test]
    fn errors_are_listed_up_to_the_cap_and_all_counted() {
        let mut result = ImportResult::default();
        for line in 0..150 {
            result.reject([taken(line)]);
        }
        assert_eq!(result.invalid, 150);
        assert_eq!(result.errors.len(), ImportResult::MAX_ERRORS);
    }
}
