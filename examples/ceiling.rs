//! The bench ceiling: the least an axum + sqlx server can do to answer `GET /products/{id}` and
//! `GET /products?page=&per_page=`.
//!
//! `bench/run.sh` measures tienda against this so its figures are ratios, not raw numbers that
//! only mean something on one machine. It reads one row by id, or one page of rows in id order
//! (`LIMIT`/`OFFSET`, no total), with plain sqlx from the same database tienda uses and returns
//! it as JSON: no middleware, no validation, no ETag, no log. `GET /floor/{id}` answers a fixed
//! product-sized JSON body without reading anything: the most any HTTP server can serve on the
//! machine, with the load generator beside it (what a cache hit is measured against as well).
//!
//! ```sh
//! CEILING_DATABASE_URL=sqlite://bench/.data/sqlite-1000000.db CEILING_ADDR=127.0.0.1:8090 \
//!     cargo run --release --example ceiling
//! ```
//!
//! `ceiling explain` (SQLite only) reads SQL statements from stdin, one per line (`-- ` lines are
//! titles), and prints each one's `EXPLAIN QUERY PLAN` and its median run time, using the SQLite
//! that sqlx bundles, the very engine tienda runs on, rather than whatever `sqlite3` CLI is
//! installed.
//!
//! Variables: `CEILING_DATABASE_URL` (`sqlite://...` or `postgres://...`, required),
//! `CEILING_ADDR` (default `127.0.0.1:8090`), `CEILING_MAX_CONNECTIONS` (default 10, as tienda).

use std::error::Error;
use std::io::BufRead;
use std::str::FromStr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{AssertSqlSafe, Row};

type AnyError = Box<dyn Error + Send + Sync>;

const SELECT: &str = "SELECT id, sku, name, description, price_cents, stock, version, created_at, updated_at \
                      FROM products WHERE id = $1";

const PAGE: &str = "SELECT id, sku, name, description, price_cents, stock, version, created_at, updated_at \
                    FROM products ORDER BY id LIMIT $1 OFFSET $2";

#[derive(Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Serialize)]
struct Product {
    id: i64,
    sku: Option<String>,
    name: String,
    description: Option<String>,
    price: String,
    stock: i64,
    version: i64,
    created_at: String,
    updated_at: String,
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// SQLite keeps timestamps as integer microseconds since the epoch.
fn sqlite_time(row: &SqliteRow, column: &str) -> Result<String, sqlx::Error> {
    let micros: i64 = row.try_get(column)?;
    DateTime::from_timestamp_micros(micros)
        .map(rfc3339)
        .ok_or_else(|| sqlx::Error::Decode(format!("{column} out of range: {micros}").into()))
}

fn pg_time(row: &PgRow, column: &str) -> Result<String, sqlx::Error> {
    row.try_get::<DateTime<Utc>, _>(column).map(rfc3339)
}

/// Decodes a row of either backend; only the timestamp columns differ.
macro_rules! product_from_row {
    ($row:expr, $time:expr) => {{
        let row = $row;
        let cents: i64 = row.try_get("price_cents")?;
        Ok::<_, sqlx::Error>(Product {
            id: row.try_get("id")?,
            sku: row.try_get("sku")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            price: format!("{}.{:02}", cents / 100, cents % 100),
            stock: row.try_get("stock")?,
            version: row.try_get("version")?,
            created_at: $time(row, "created_at")?,
            updated_at: $time(row, "updated_at")?,
        })
    }};
}

async fn read(db: &Db, id: i64) -> Result<Option<Product>, sqlx::Error> {
    match db {
        Db::Sqlite(pool) => match sqlx::query(SELECT).bind(id).fetch_optional(pool).await? {
            Some(row) => product_from_row!(&row, sqlite_time).map(Some),
            None => Ok(None),
        },
        Db::Postgres(pool) => match sqlx::query(SELECT).bind(id).fetch_optional(pool).await? {
            Some(row) => product_from_row!(&row, pg_time).map(Some),
            None => Ok(None),
        },
    }
}

async fn read_page(db: &Db, limit: i64, offset: i64) -> Result<Vec<Product>, sqlx::Error> {
    match db {
        Db::Sqlite(pool) => {
            let rows = sqlx::query(PAGE).bind(limit).bind(offset).fetch_all(pool).await?;
            rows.iter()
                .map(|row| product_from_row!(row, sqlite_time))
                .collect()
        }
        Db::Postgres(pool) => {
            let rows = sqlx::query(PAGE).bind(limit).bind(offset).fetch_all(pool).await?;
            rows.iter().map(|row| product_from_row!(row, pg_time)).collect()
        }
    }
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<i64>,
    per_page: Option<i64>,
}

#[derive(Serialize)]
struct ProductPage {
    items: Vec<Product>,
    page: i64,
    per_page: i64,
}

/// One page in id order, without the total a real listing would count.
async fn list_products(State(db): State<Db>, Query(query): Query<PageQuery>) -> Response {
    let page = query.page.unwrap_or(1).max(1);
    let per_page = query.per_page.unwrap_or(20).clamp(1, 100);
    match read_page(&db, per_page, (page - 1) * per_page).await {
        Ok(items) => axum::Json(ProductPage {
            items,
            page,
            per_page,
        })
        .into_response(),
        Err(error) => {
            eprintln!("ceiling: {error}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn get_product(State(db): State<Db>, Path(id): Path<i64>) -> Response {
    match read(&db, id).await {
        Ok(Some(product)) => axum::Json(product).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(error) => {
            eprintln!("ceiling: {error}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// SQLite options: the file must exist, and this process only reads it. The file is in WAL mode
/// already (tienda set it), so readers never block on a writer.
fn sqlite_options(url: &str) -> Result<SqliteConnectOptions, AnyError> {
    Ok(SqliteConnectOptions::from_str(url)?
        .read_only(true)
        .busy_timeout(Duration::from_secs(5))
        // The same memory map tienda reads through, so the ratio measures the server, not this.
        .pragma("mmap_size", tienda::store::SQLITE_MMAP_SIZE.to_string()))
}

async fn connect(url: &str, max_connections: u32) -> Result<Db, AnyError> {
    if url.starts_with("sqlite:") {
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(sqlite_options(url)?)
            .await?;
        Ok(Db::Sqlite(pool))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(url)
            .await?;
        Ok(Db::Postgres(pool))
    } else {
        Err("CEILING_DATABASE_URL must start with sqlite: or postgres:".into())
    }
}

/// The median of `runs` executions of `sql`, after one warm-up run, and its row count.
async fn time_statement(pool: &SqlitePool, sql: &str, runs: usize) -> Result<(Duration, usize), AnyError> {
    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await?.len();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok((times.get(runs / 2).copied().unwrap_or_default(), rows))
}

/// `ceiling explain`: the plan and median time of each statement read from stdin.
async fn explain(url: &str) -> Result<(), AnyError> {
    if !url.starts_with("sqlite:") {
        return Err("explain is for SQLite; use psql's EXPLAIN on PostgreSQL".into());
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(sqlite_options(url)?)
        .await?;
    let version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&pool)
        .await?;
    println!("-- SQLite {version} (bundled with sqlx, as in tienda)");
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let sql = line.trim();
        if sql.is_empty() {
            continue;
        }
        if sql.starts_with("--") {
            println!("\n{sql}");
            continue;
        }
        println!("{sql}");
        let plan = sqlx::query(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
            .fetch_all(&pool)
            .await?;
        // Each plan row names its parent; indent by depth as the sqlite3 shell does.
        let mut depths: Vec<(i64, usize)> = Vec::new();
        for row in &plan {
            let id: i64 = row.try_get(0)?;
            let parent: i64 = row.try_get(1)?;
            let detail: String = row.try_get(3)?;
            let depth = depths
                .iter()
                .find(|(node, _)| *node == parent)
                .map_or(0, |(_, depth)| depth + 1);
            depths.push((id, depth));
            println!("{}`--{detail}", "   ".repeat(depth));
        }
        let (median, rows) = time_statement(&pool, sql, 5).await?;
        println!(
            "=> {rows} rows, median of 5 runs {:.2} ms",
            median.as_secs_f64() * 1000.0
        );
    }
    pool.close().await;
    Ok(())
}

/// A product-sized answer (about 300 bytes) that costs no work: the HTTP floor.
async fn floor(Path(id): Path<i64>) -> Response {
    let body = format!(
        r#"{{"id":{id},"sku":"SKU-{id}","name":"Product {id}","description":"A product of the catalogue, for the floor","price":"19.99","stock":7,"version":1,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}}"#
    );
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn serve(url: &str) -> Result<(), AnyError> {
    let addr = env_or("CEILING_ADDR", "127.0.0.1:8090");
    let max_connections: u32 = env_or("CEILING_MAX_CONNECTIONS", "10").parse()?;
    let db = connect(url, max_connections).await?;
    let app = Router::new()
        .route("/products", get(list_products))
        .route("/products/{id}", get(get_product))
        .route("/floor/{id}", get(floor))
        .with_state(db);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("ceiling: serving on {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            // Ctrl-C or SIGTERM ends the process anyway; a failed handler just means no grace.
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let Ok(url) = std::env::var("CEILING_DATABASE_URL") else {
        eprintln!("ceiling: set CEILING_DATABASE_URL (sqlite://... or postgres://...)");
        return std::process::ExitCode::FAILURE;
    };
    let result = match std::env::args().nth(1).as_deref() {
        None | Some("serve") => serve(&url).await,
        Some("explain") => explain(&url).await,
        Some(other) => Err(format!("unknown command {other:?}: use serve or explain").into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ceiling: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
