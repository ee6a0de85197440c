//! Idempotency keys: what a key may look like and what makes two requests "the same".

use sha2::{Digest, Sha256};

use super::product::Invalid;

/// How long a key's answer is replayed.
pub const RETENTION: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// How many live keys one caller may hold: enough for any honest client's day, and a bound on
/// what one account can make the server store.
pub const MAX_LIVE_KEYS: usize = 10_000;

/// 1..=255 printable ASCII characters (space included), as the header carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key as the header carries it, or why it is refused.
    pub fn parse(raw: &[u8]) -> Result<Self, Invalid> {
        if raw.is_empty() || raw.len() > 255 || !raw.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Err(Invalid::new(
                "invalid_idempotency_key",
                "must be 1 to 255 printable ASCII characters",
            ));
        }
        Ok(IdempotencyKey(String::from_utf8_lossy(raw).into_owned()))
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The fingerprint of a request: SHA-256 over method, path (with query) and body, each
/// length-prefixed so no two different requests can run together into the same bytes.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    for part in [method.as_bytes(), path.as_bytes(), body] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_printable_ascii_up_to_255() {
        assert!(IdempotencyKey::parse(b"order-1001 retry").is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; 256]).is_err());
        assert!(IdempotencyKey::parse(b"").is_err());
        assert!(IdempotencyKey::parse(b"tab\there").is_err());
        assert!(IdempotencyKey::parse("ñ".as_bytes()).is_err());
    }

    #[test]
    fn fingerprints_separate_their_parts() {
        let a = fingerprint("POST", "/a", b"bc");
        assert_eq!(a, fingerprint("POST", "/a", b"bc"));
        assert_ne!(a, fingerprint("POST", "/ab", b"c"));
        assert_ne!(a, fingerprint("PUT", "/a", b"bc"));
    }
}
