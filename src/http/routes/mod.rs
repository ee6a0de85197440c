pub mod auth;
pub mod products;
pub mod users;
