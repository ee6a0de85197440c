//! Entity tags derived from a resource's version, and the matching rules of RFC 9110.

/// The strong ETag of a product at `version`, e.g. `"v3"`.
pub fn for_version(version: i64) -> String {
    format!("\"v{version}\"")
}

/// Whether an `If-Match` / `If-None-Match` header value matches the current `etag`.
/// Handles `*`, comma-separated lists and weak tags (`W/"v3"`). For If-Match we compare strongly
/// (a weak tag never matches); for If-None-Match weakly, as RFC 9110 requires.
pub fn matches(header: &str, etag: &str, weak_allowed: bool) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        if candidate == "*" {
            return true;
        }
        match candidate.strip_prefix("W/") {
            Some(weak) => weak_allowed && weak == etag,
            None => candidate == etag,
        }
    })
}

/// A write's `If-Match` condition, checked against the stored version inside the write's
/// transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No `If-Match`: the write is unconditional.
    Always,
    /// The raw `If-Match` header value.
    IfMatch(String),
}

impl Precondition {
    /// Whether a write may go ahead on a resource at `current_version`.
    pub fn holds(&self, current_version: i64) -> bool {
        match self {
            Precondition::Always => true,
            Precondition::IfMatch(header) => matches(header, &for_version(current_version), false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_follows_rfc_9110() {
        let tag = for_version(3);
        assert_eq!(tag, "\"v3\"");
        assert!(matches("\"v3\"", &tag, false));
        assert!(matches("\"v1\", \"v3\"", &tag, false));
        assert!(matches("*", &tag, false));
        assert!(!matches("\"v2\"", &tag, false));
        assert!(!matches("W/\"v3\"", &tag, false));
        assert!(matches("W/\"v3\"", &tag, true));
        assert!(!matches("v3", &tag, true));
    }
}
