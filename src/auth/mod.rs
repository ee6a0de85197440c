//! Authentication machinery: password hashing, tokens, login throttling, client addresses.

pub mod client_ip;
pub mod counters;
pub mod password;
pub mod throttle;
pub mod tokens;
