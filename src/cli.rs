//! The command line.

use clap::{Parser, Subcommand};

const CONFIGURATION: &str = "\
Configuration comes from the environment:
  DATABASE_URL                 sqlite://tienda.db (default, created on first start) or postgres://...
  TIENDA_ADDR                  listen address (default 127.0.0.1:8080; 0.0.0.0:$PORT when PORT is set)
  TIENDA_ENV                   development (default) or production
  TIENDA_DB_MAX_CONNECTIONS    database pool size (default 10)
  TIENDA_DB_TIMEOUT_SECS       wait for a pooled connection before answering 503 (default 5)
  TIENDA_BODY_LIMIT_BYTES      largest request body (default 1048576)
  TIENDA_REQUEST_TIMEOUT_SECS  longest a request may run (default 30)
  TIENDA_SHUTDOWN_GRACE_SECS   how long in-flight requests may finish after SIGTERM (default 30)
  RUST_LOG, TIENDA_LOG_FORMAT  log filter (default info); json or pretty (default: pretty on a terminal)";

/// tienda: a product catalogue and inventory API.
#[derive(Debug, Parser)]
#[command(name = "tienda", version, about, after_help = CONFIGURATION)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database, then serve the HTTP API until SIGTERM or Ctrl-C (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
}
