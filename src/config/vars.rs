//! The environment as settings are read from it: empty values count as unset, and every
//! reading that fails names its variable.

use std::net::SocketAddr;
use std::time::Duration;

use super::{ConfigError, invalid};

/// A lookup of variables by name (the process environment, or a map in tests).
pub(super) struct Vars<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Vars<'a> {
    pub(super) fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Vars { lookup }
    }

    /// The value, unless unset or blank.
    pub(super) fn get(&self, key: &str) -> Option<String> {
        (self.lookup)(key).filter(|v| !v.trim().is_empty())
    }

    /// The value as given, blank included (a password may be all spaces).
    pub(super) fn raw(&self, key: &str) -> Option<String> {
        (self.lookup)(key)
    }

    /// A whole number in `min..=max`, or `default` when unset.
    pub(super) fn number(
        &self,
        key: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(text) => match text.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(invalid(
                    key,
                    format!("`{text}` is not a whole number in {min}..={max}"),
                )),
            },
        }
    }

    /// A number of seconds in `min..=max`, or `default` when unset.
    pub(super) fn secs(
        &self,
        key: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.number(key, default, min, max).map(Duration::from_secs)
    }

    /// `true`/`1` or `false`/`0`; unset is false.
    pub(super) fn flag(&self, key: &'static str) -> Result<bool, ConfigError> {
        match self.get(key).as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(other) => Err(invalid(key, format!("`{other}` is not true or false"))),
        }
    }

    /// A socket address such as `example`, when set.
    pub(super) fn addr(&self, key: &'static str, example: &str) -> Result<Option<SocketAddr>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(addr) => addr
                .parse()
                .map(Some)
                .map_err(|_| invalid(key, format!("`{addr}` is not an address such as {example}"))),
        }
    }
}

/// Cores the process may use: the default width of CPU-bound gates.
pub(super) fn cores() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as u64
}
