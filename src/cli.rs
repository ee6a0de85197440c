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
    /// Manage user accounts.
    #[command(subcommand)]
    Users(UsersCommand),
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user. The password is read from a prompt, or from stdin with --password-stdin;
    /// never from the command line, where other users could read it.
    Create {
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
