//! Black-box tests: each spawns the real application on port 0 with a fresh database and talks
//! HTTP to it. Every test runs on SQLite, and on PostgreSQL when `TIENDA_TEST_DATABASE_URL` is set
//! (when it is not, the PostgreSQL variants are listed as ignored: see build.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod helpers;
mod admin;
mod auth;
mod cache;
mod cache_redis;
mod deadlines;
mod environment;
mod errors;
mod exports;
mod hit_lane;
mod hostile_clients;
mod hostile_input;
mod import_property;
mod imports;
mod inventory;
mod job_helpers;
mod jobs;
mod listing;
mod openapi;
mod operations;
mod outage;
mod process;
mod products;
mod retention;
mod validation;
mod webhooks;
