//! tienda: a product catalogue and inventory API.
// Every public item says what it is for (ARCHITECTURE.md); clippy -D warnings keeps it so.
#![warn(missing_docs)]

pub mod auth;
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
pub mod webhooks;
