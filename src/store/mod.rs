//! Persistence: the one place that knows sqlx and SQL.
//!
//! One store serves SQLite and PostgreSQL. The SQL text is shared where the dialects agree (they
//! both take `$1` placeholders, `RETURNING`, row-value comparisons); the few places that differ
//! are named [`Dialect`] methods. [`on_db!`] expands a block once per backend, so each query is
//! written once and compiled against both drivers.

pub mod admin_sessions;
pub mod changes;
mod deadline;
mod dialect;
mod error;
pub mod idempotency;
pub mod imports;
pub mod inventory;
pub mod job_files;
pub mod jobs;
pub mod listing;
pub mod outbox;
pub mod products;
pub mod refresh_tokens;
mod timestamp;
pub mod users;
pub mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use dialect::Dialect;
pub(crate) use dialect::for_update;
pub use error::{Conflict, StoreError};
pub use timestamp::Timestamp;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Why `DATABASE_URL` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InvalidDatabaseUrl {
    /// Neither SQLite nor PostgreSQL.
    #[error("must start with sqlite: or postgres://")]
    Scheme,
    /// A `sqlite:` URL the driver refuses.
    #[error("invalid SQLite URL: {0}")]
    Sqlite(#[source] sqlx::Error),
    /// A `postgres://` URL the driver refuses.
    #[error("invalid PostgreSQL URL: {0}")]
    Postgres(#[source] sqlx::Error),
}

/// Validated connection options, parsed from `DATABASE_URL` once at start.
#[derive(Debug, Clone)]
pub enum ConnectOptions {
    /// A `sqlite:` URL (the embedded default).
    Sqlite(SqliteConnectOptions),
    /// A `postgres:` URL.
    Postgres(PgConnectOptions),
}

impl ConnectOptions {
    /// The options `url` stands for, or why it cannot be used.
    pub fn parse(url: &str) -> Result<Self, InvalidDatabaseUrl> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
        match scheme {
            "sqlite" => SqliteConnectOptions::from_str(url)
                .map(Self::Sqlite)
                .map_err(InvalidDatabaseUrl::Sqlite),
            "postgres" | "postgresql" => PgConnectOptions::from_str(url)
                .map(Self::Postgres)
                .map_err(InvalidDatabaseUrl::Postgres),
            _ => Err(InvalidDatabaseUrl::Scheme),
        }
    }
}

/// How much of the SQLite file is read through a memory map (1 GiB; a larger file is mapped
/// this far and read beyond it).
pub const SQLITE_MMAP_SIZE: u64 = 1 << 30;

/// The one writer connection's page cache, in KiB (SQLite's default is 2 MiB). The memory map
/// serves reads, but a page being changed is copied into this cache, and a transaction whose
/// changed pages outgrow it spills them to the WAL before it commits: an import batch changes
/// pages of ten indexes and the full-text index at once.
const SQLITE_WRITER_CACHE_KIB: u32 = 32 * 1024;

/// A pooled PostgreSQL connection idle at least this long is pinged before it is lent out.
const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// `TIENDA_DB_MAX_CONNECTIONS`.
    pub max_connections: u32,
    /// How long a request waits for a connection before a 503 (`TIENDA_DB_TIMEOUT_SECS`).
    pub acquire_timeout: Duration,
    /// PostgreSQL cancels any statement that runs longer, SQLite a listing statement (see
    /// `deadline`), so a query whose request has given up cannot hold a pooled connection.
    pub statement_timeout: Duration,
    /// Into how many id ranges a relevance search is split (`listing::RelevancePart`); `None`:
    /// one per core, at most 4, on SQLite and 1 (no split) on PostgreSQL.
    pub search_parts: Option<usize>,
    /// A relevance search is split only when the highest product id reaches this: below it,
    /// scoring every match costs less than the extra statements.
    pub search_split_min_id: i64,
    /// Reads the SQLite file through a memory map of [`SQLITE_MMAP_SIZE`] (`tienda serve`,
    /// `tienda worker`); without it, through each connection's own page cache (the bulk
    /// commands, whose reads are few: what they map would count in their resident memory).
    pub sqlite_mmap: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    /// SQLite allows one writer at a time; a one-connection writer pool queues writers in
    /// process (fair, no busy-wait sleeps) while readers use the WAL concurrently.
    Sqlite {
        reader: SqlitePool,
        writer: SqlitePool,
    },
    Postgres(PgPool),
}

/// Runs `$body` with `$reader` and `$writer` bound to the backend's pools and `$dialect` to its
/// [`Dialect`]. The body is compiled once per backend.
macro_rules! on_db {
    ($store:expr, |$reader:ident, $writer:ident, $dialect:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite { reader, writer } => {
                #[allow(unused_variables)]
                let ($reader, $writer, $dialect) = (reader, writer, $crate::store::Dialect::Sqlite);
                $body
            }
            $crate::store::Pool::Postgres(pool) => {
                #[allow(unused_variables)]
                let ($reader, $writer, $dialect) = (pool, pool, $crate::store::Dialect::Postgres);
                $body
            }
        }
    };
}
pub(crate) use on_db;

/// The database, cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    /// Into how many id ranges a relevance search is split, each scored on its own connection
    /// at once (see `listing::RelevancePart`): SQLite runs a statement on one core. 1 on
    /// PostgreSQL, which plans its own parallelism (unless configured).
    pub(crate) search_parts: usize,
    /// `PoolSettings::search_split_min_id`.
    pub(crate) search_split_min_id: i64,
    /// The longest a listing statement may run (`PoolSettings::statement_timeout`).
    pub(crate) statement_timeout: Duration,
    /// Hears of every committed product write (`changes.rs`).
    pub(crate) listener: changes::Listener,
    /// How product and stock events are rendered into the outbox; `None`: no events.
    pub(crate) event_shapes: Option<outbox::EventShapes>,
}

impl Store {
    /// Connects (creating the SQLite file when missing) and checks the database answers.
    pub async fn connect(options: &ConnectOptions, settings: &PoolSettings) -> Result<Self, StoreError> {
        let pool = match options {
            ConnectOptions::Sqlite(options) => {
                // synchronous=FULL in WAL mode: a commit is acknowledged only after the WAL is
                // fsynced, so an acknowledged write survives a crash or a power cut.
                let options = options
                    .clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5))
                    // Reads through a memory map rather than a read() per page: no system call or
                    // copy per page, and one copy of each page shared by every connection instead
                    // of a 2 MiB cache each. A search that scores 10,000 matches touches ~7,000
                    // pages of the FTS size table; through read() that was a third of its time.
                    .pragma(
                        "mmap_size",
                        if settings.sqlite_mmap { SQLITE_MMAP_SIZE } else { 0 }.to_string(),
                    );
                // No ping before lending a connection (sqlx's default): a connection to a local
                // file cannot go stale the way a network one can, and the ping is a round trip
                // to the connection's worker thread on every acquire, about a sixth of the CPU a
                // read by id cost (issue 12's profile).
                let writer = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(settings.acquire_timeout)
                    .test_before_acquire(false)
                    .connect_with(
                        options
                            .clone()
                            .pragma("cache_size", format!("-{}", SQLITE_WRITER_CACHE_KIB)),
                    )
                    .await?;
                let reader = SqlitePoolOptions::new()
                    .max_connections(settings.max_connections)
                    .acquire_timeout(settings.acquire_timeout)
                    .test_before_acquire(false)
                    .connect_with(options.read_only(false))
                    .await?;
                Pool::Sqlite { reader, writer }
            }
            ConnectOptions::Postgres(options) => Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(settings.max_connections)
                    .acquire_timeout(settings.acquire_timeout)
                    // sqlx pings every connection before lending it: a round trip to the server
                    // per request, a fifth of the CPU a read by id cost (issue 12's profile).
                    // Only a connection idle long enough to have been dropped meanwhile (the
                    // server restarted, a proxy timed it out) is pinged; a dead one is replaced.
                    .test_before_acquire(false)
                    .before_acquire(|connection, meta| {
                        Box::pin(async move {
                            if meta.idle_for < PING_IDLE_AFTER {
                                return Ok(true);
                            }
                            Ok(sqlx::Connection::ping(connection).await.is_ok())
                        })
                    })
                    .connect_with(options.clone().options([(
                        "statement_timeout",
                        format!("{}ms", settings.statement_timeout.as_millis()),
                    )]))
                    .await?,
            ),
        };
        let search_parts = match (&pool, settings.search_parts) {
            (_, Some(parts)) => parts,
            (Pool::Sqlite { .. }, None) => std::thread::available_parallelism()
                .map_or(1, usize::from)
                .clamp(1, 4),
            (Pool::Postgres(_), None) => 1,
        }
        // Each part holds a connection at once.
        .min(settings.max_connections as usize)
        .max(1);
        Ok(Store {
            pool,
            search_parts,
            search_split_min_id: settings.search_split_min_id,
            statement_timeout: settings.statement_timeout,
            listener: changes::Listener::default(),
            event_shapes: None,
        })
    }

    /// Applies the migrations embedded in the binary that the database has not seen yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite { writer, .. } => SQLITE_MIGRATIONS.run(writer).await?,
            Pool::Postgres(pool) => {
                // Migrations may rebuild indexes over a large catalogue: no statement timeout.
                let mut conn = pool.acquire().await?;
                sqlx::query("SET statement_timeout = 0")
                    .execute(&mut *conn)
                    .await?;
                POSTGRES_MIGRATIONS.run(&mut *conn).await?;
                sqlx::query("RESET statement_timeout").execute(&mut *conn).await?;
            }
        }
        Ok(())
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_db!(self, |reader, _w, _d| {
            sqlx::query("SELECT 1").execute(reader).await?;
        });
        Ok(())
    }

    /// Waits for checked-out connections to come back, then closes every connection.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite { reader, writer } => {
                reader.close().await;
                writer.close().await;
            }
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

/// Connection counts of the pool(s).
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    /// Open and waiting to be lent.
    pub idle: u64,
    /// Lent to a request.
    pub in_use: u64,
    /// The configured maximum.
    pub max: u64,
}

/// What the business gauges show.
#[derive(Debug, Clone, Copy, Default)]
pub struct StockSummary {
    /// Products in the catalogue.
    pub products: i64,
    /// Units in stock, all products.
    pub units: i64,
    /// Products with no stock.
    pub out_of_stock: i64,
    /// Products under the low-stock threshold.
    pub low_stock: i64,
}

impl Store {
    /// Whether the database is a SQLite file (one writer at a time, across processes).
    pub fn is_sqlite(&self) -> bool {
        matches!(self.pool, Pool::Sqlite { .. })
    }

    /// Idle, in-use and maximum connections of the pool, for the metrics scrape.
    pub fn pool_stats(&self) -> PoolStats {
        let count = |size: u32, idle: usize, max: u32| PoolStats {
            idle: idle as u64,
            in_use: u64::from(size).saturating_sub(idle as u64),
            max: u64::from(max),
        };
        match &self.pool {
            Pool::Sqlite { reader, writer } => {
                let r = count(
                    reader.size(),
                    reader.num_idle(),
                    reader.options().get_max_connections(),
                );
                let w = count(
                    writer.size(),
                    writer.num_idle(),
                    writer.options().get_max_connections(),
                );
                PoolStats {
                    idle: r.idle + w.idle,
                    in_use: r.in_use + w.in_use,
                    max: r.max + w.max,
                }
            }
            Pool::Postgres(pool) => count(pool.size(), pool.num_idle(), pool.options().get_max_connections()),
        }
    }

    /// Takes a connection from the (reader) pool and gives it back: how long the wait is.
    pub async fn acquire_probe(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite { reader, .. } => drop(reader.acquire().await?),
            Pool::Postgres(pool) => drop(pool.acquire().await?),
        }
        Ok(())
    }

    /// Products, units in stock, and products out of / low on stock, in one aggregate query.
    pub async fn stock_summary(&self, low_stock_below: i64) -> Result<StockSummary, StoreError> {
        on_db!(self, |reader, _writer, _dialect| {
            let row: (i64, i64, i64, i64) = sqlx::query_as(
                "SELECT CAST(count(*) AS BIGINT), CAST(COALESCE(SUM(stock), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN stock = 0 THEN 1 ELSE 0 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN stock > 0 AND stock < $1 THEN 1 ELSE 0 END), 0) AS BIGINT) \
                 FROM products",
            )
            .bind(low_stock_below)
            .fetch_one(reader)
            .await?;
            Ok(StockSummary {
                products: row.0,
                units: row.1,
                out_of_stock: row.2,
                low_stock: row.3,
            })
        })
    }
}
