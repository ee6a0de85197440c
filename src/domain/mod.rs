//! Pure types and rules; depends on nothing else in the crate.

pub mod etag;
pub mod money;
pub mod product;
