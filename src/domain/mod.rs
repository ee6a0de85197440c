//! Pure types and rules; depends on nothing else in the crate.

pub mod cursor;
pub mod etag;
pub mod idempotency;
pub mod import;
pub mod inventory;
pub mod job;
pub mod listing;
pub mod money;
pub mod number;
pub mod product;
pub mod text;
pub mod user;
pub mod webhook;
