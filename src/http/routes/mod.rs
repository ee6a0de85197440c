pub mod auth;
pub mod health;
pub mod inventory;
pub mod products;
pub mod users;
