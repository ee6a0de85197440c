use sqlx::migrate::MigrateError;

/// What can go wrong in the store, in terms the layers above can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row.
    #[error("not found")]
    NotFound,
    /// A named constraint or rule refused the write.
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    /// An `If-Match` precondition did not hold; nothing was written.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The database cannot be reached or is saturated; worth retrying later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] MigrateError),
    /// A keyset position whose value does not fit the sort key.
    #[error("invalid cursor position")]
    InvalidCursor,
    /// The answer to keep for an idempotency key could not be rendered; nothing was written.
    #[error("cannot render the answer to keep: {0}")]
    Render(#[source] serde_json::Error),
    /// A running job's lease is held by another worker now (or the job ended): nothing was
    /// written.
    #[error("the job's lease was lost")]
    LeaseLost,
    /// A stored row breaks a domain rule: the data was changed behind our back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// The named kinds of conflict a write can run into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Another product has this sku (ignoring case).
    DuplicateSku,
    /// Another user has this email.
    DuplicateEmail,
    /// The change would leave no enabled admin.
    LastAdmin,
    /// A stock adjustment would take the stock below zero.
    InsufficientStock,
    /// A stock adjustment would take the stock above its maximum.
    StockLimit,
    /// The job has finished: it cannot be cancelled.
    JobFinished,
    /// The job has not finished (an export's file is asked for too early).
    JobNotFinished,
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(error)
            }
            // SQLITE_BUSY / SQLITE_LOCKED after the busy timeout: the writer is saturated.
            // SQLITE_INTERRUPT / PostgreSQL query_canceled: a statement ran past its deadline.
            sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5" | "6" | "9" | "57014")) => {
                StoreError::Unavailable(error)
            }
            sqlx::Error::Database(db) if db.code().as_deref().is_some_and(is_outage_code) => {
                StoreError::Unavailable(error)
            }
            // A connection that died under the driver (the server went away mid-conversation).
            sqlx::Error::WorkerCrashed | sqlx::Error::Tls(_) => StoreError::Unavailable(error),
            _ => StoreError::Database(error),
        }
    }
}

/// PostgreSQL codes that say the server is going away, starting up or out of connections,
/// rather than that the statement is wrong: a restart or a failover, worth a retry later (503,
/// never 500). Class 08 connection exceptions; 57P01 admin shutdown, 57P02 crash shutdown,
/// 57P03 cannot connect now, 57P05 idle session timeout; 53300 too many connections.
fn is_outage_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "57P05" | "53300")
}

/// Whether `error` is a unique violation of the constraint or index `name`. PostgreSQL names
/// the constraint; SQLite names the indexed expression in its message instead, so callers pass
/// the table too.
pub(crate) fn is_unique_violation(error: &sqlx::Error, name: &str, table: &str) -> bool {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => match db.constraint() {
            Some(constraint) => constraint == name,
            None => db.message().contains(&format!("{table}.")) || db.message().contains(name),
        },
        _ => false,
    }
}
