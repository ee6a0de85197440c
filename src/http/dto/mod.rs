//! What crosses the wire: request parsing into domain types and response shapes.

pub mod inventory;
pub mod job;
pub mod product;
pub mod user;
