//! tienda: a product catalogue and inventory API.

pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
