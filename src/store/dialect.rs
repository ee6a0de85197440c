//! What differs between SQLite and PostgreSQL, named: the statements that open a write
//! transaction and lock rows. Everything else is shared SQL text.

/// The SQL dialect a block is running against, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded default.
    Sqlite,
    /// The server for several instances.
    Postgres,
}

impl Dialect {
    /// Picks the statement for this dialect.
    pub fn pick(self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self {
            Dialect::Sqlite => sqlite,
            Dialect::Postgres => postgres,
        }
    }

    /// The `n`th (from 1) parameter of a statement whose parameters are bound in the order they
    /// appear. SQLite gets an anonymous `?`: a numbered or named one (`$1`, `?1`) goes into a
    /// list that SQLite and sqlx search linearly for every parameter, so binding a statement of
    /// n of them costs n^2 (a 500-row import insert with 3,000 parameters spent a quarter of the
    /// import's time in `sqlite3_bind_parameter_name`).
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => "?".to_owned(),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// The statement that opens a transaction that will write. SQLite takes the write lock up
    /// front (IMMEDIATE), so a read-then-write transaction never fails to upgrade its lock.
    pub fn begin_write(self) -> &'static str {
        self.pick("BEGIN IMMEDIATE", "BEGIN")
    }
}

/// A `SELECT` that locks what it reads until the write transaction ends: `FOR UPDATE` (or
/// `FOR UPDATE OF` a table) on PostgreSQL. SQLite has no such clause and needs none: its write
/// transaction (`BEGIN IMMEDIATE`) already excludes every other writer.
macro_rules! for_update {
    ($dialect:expr, $select:expr) => {
        $dialect.pick($select, concat!($select, " FOR UPDATE"))
    };
    ($dialect:expr, $select:expr, of $table:literal) => {
        $dialect.pick($select, concat!($select, " FOR UPDATE OF ", $table))
    };
}
pub(crate) use for_update;
