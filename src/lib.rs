//! tienda: a product catalogue and inventory API.
// Every public item says what it is for (ARCHITECTURE.md); clippy -D warnings keeps it so.
#![warn(missing_docs)]

pub mod auth;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod config;
pub mod domain;
pub mod http;
pub mod jobs;
pub mod limits;
pub mod log_line;
pub mod log_writer;
pub mod logs;
pub mod metrics;
pub mod services;
pub mod startup;
pub mod state;
pub mod store;
pub mod transfer;
pub mod webhooks;

/// Makes ring the process's TLS crypto provider, once. Every HTTP client of the process (webhook
/// deliveries, the OTLP exporter) is reqwest with rustls and no provider of its own (its default
/// provider, aws-lc-rs, costs minutes of build), and panics when built before this ran. Call it
/// before building any client; calling it again does nothing.
pub fn install_tls_provider() {
    // Already installed (by an earlier call or an embedding program) is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
