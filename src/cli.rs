//! The command line.

use clap::{Parser, Subcommand};

const CONFIGURATION: &str = "\
Configuration comes from the environment (see README.md for all of it):
  DATABASE_URL                 sqlite://tienda.db (default, created on first start) or postgres://...
  TIENDA_ADDR                  listen address (default 127.0.0.1:8080; 0.0.0.0:$PORT when PORT is set)
  TIENDA_ENV                   development (default) or production
  TIENDA_JWT_SECRET            HS256 key, at least 32 bytes (required in production)
  TIENDA_ADMIN_EMAIL/_PASSWORD first admin, created at start when missing
  TIENDA_PROTECT_READS         true: product reads need a valid token
  REDIS_URL                    shared login throttle (and cache) across instances
  TIENDA_DB_MAX_CONNECTIONS    database pool size (default 10)
  TIENDA_BODY_LIMIT_BYTES      largest request body (default 1048576)
  TIENDA_SHUTDOWN_GRACE_SECS   how long in-flight requests may finish after SIGTERM (default 30)
  TIENDA_SHUTDOWN_DRAIN_SECS   before closing: serve while not ready, then serve open connections (default 0)
  TIENDA_MAX_CONNECTIONS       connections open at once; more wait in the backlog (default 4096)
  TIENDA_HEADER_TIMEOUT_SECS   a request head must arrive within this (default 10)
  TIENDA_IDLE_TIMEOUT_SECS     an idle keep-alive connection is closed after this (default 60)
  TIENDA_HASH_CONCURRENCY      password hashes at once; 503 after 2 s of waiting (default: cores)
  TIENDA_SEARCH_CONCURRENCY    relevance searches at once; 503 after 1 s of waiting (default: 2 x cores)
  TIENDA_REGISTER_LIMIT_PER_HOUR  registrations per client address per hour (default 100)
  TIENDA_SESSION_MAX_DAYS      a login's refresh tokens live at most this long (default 90)
  TIENDA_METRICS_ADDR          serve /metrics on this separate address
  TIENDA_METRICS_PUBLIC        true: /metrics on the API port even in production (default false)
  TIENDA_WORKERS               jobs run at once by serve (0: none) or by each worker (default 1)
  TIENDA_JOB_LEASE_SECS        a worker's hold on a job without renewal (default 30)
  TIENDA_IMPORT_MAX_MB         largest import upload (default 512)
  TIENDA_IMPORT_BATCH_ROWS     rows an import writes per transaction, 1 to 4000 (default 500 on SQLite, 2000 on PostgreSQL)
  TIENDA_EXPORT_TTL_HOURS      how long an export's file is served (default 24)
  TIENDA_WEBHOOK_RETENTION_DAYS  delivered webhook deliveries and their events are kept (default 7)
  TIENDA_WEBHOOK_DEAD_RETENTION_DAYS  dead webhook deliveries are kept (default 30)
  TIENDA_PURGE_INTERVAL_SECS   how often expired rows are deleted (default 3600)
  RUST_LOG, TIENDA_LOG_FORMAT  log filter (default info); json or pretty (default: pretty on a terminal)";

/// tienda: a product catalogue and inventory API.
#[derive(Debug, Parser)]
#[command(name = "tienda", version, about, after_help = CONFIGURATION)]
pub struct Cli {
    /// What to do; `serve` when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database, then serve the HTTP API until SIGTERM or Ctrl-C (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Manage user accounts.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Run background jobs (imports, exports) until SIGTERM or Ctrl-C, without serving HTTP.
    Worker,
    /// Import products from a CSV or JSON Lines file; exit code 0 only when every row was
    /// accepted.
    Import {
        /// The file to import.
        file: std::path::PathBuf,
        /// csv or jsonl.
        #[arg(long, default_value = "csv")]
        format: String,
        /// upsert (match by sku) or create.
        #[arg(long, default_value = "upsert")]
        mode: String,
        /// abort (any invalid row: write nothing) or skip (write the valid rows).
        #[arg(long, default_value = "abort")]
        on_error: String,
        /// Validate and count, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Export the catalogue as CSV or JSON Lines.
    Export {
        /// csv or jsonl.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(short = 'o', long = "output")]
        output: Option<std::path::PathBuf>,
    },
}

/// `tienda users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user. The password is read from a prompt, or from stdin with --password-stdin;
    /// never from the command line, where other users could read it.
    Create {
        /// The new user's email (ASCII, at most 254 characters).
        #[arg(long)]
        email: String,
        /// admin, staff or customer.
        #[arg(long, default_value = "customer")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}
