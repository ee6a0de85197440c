pub mod auth;
pub mod inventory;
pub mod products;
pub mod users;
