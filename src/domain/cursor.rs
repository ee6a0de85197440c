//! Opaque, tamper-evident cursors for keyset pages.
//!
//! A cursor carries the sort, the filters, the page size and the position of the last item
//! seen, as compact JSON, base64url-encoded and signed with HMAC-SHA256 under a server key. A
//! cursor that was altered, truncated or made up fails verification and is rejected, so it can
//! never select a page the server did not hand out.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::listing::{After, Filters, Sort};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept in the cursor: 128 bits is plenty against forgery and keeps URLs short.
const TAG_LEN: usize = 16;
const VERSION: u8 = 1;

/// Everything a keyset walk needs to continue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CursorState {
    /// The cursor format; a cursor of another version is refused, not misread.
    #[serde(rename = "v")]
    pub version: u8,
    /// The sort of the walk; a request that changes it cannot continue the walk.
    #[serde(rename = "s")]
    pub sort: Sort,
    /// The filters of the walk, likewise fixed for its length.
    #[serde(rename = "f")]
    pub filters: Filters,
    /// Page size, kept so a bare `cursor` continues with the same one.
    #[serde(rename = "l")]
    pub limit: u64,
    /// The last row of the previous page.
    #[serde(rename = "a")]
    pub after: After,
}

/// A cursor that was not issued by this server, or was altered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is not one this server issued")]
pub struct InvalidCursor;

/// Signs and verifies cursors with one key.
#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec { key: <redacted> }")
    }
}

impl CursorCodec {
    /// Cursors signed with a key derived from `key`.
    pub fn new(key: &[u8]) -> Self {
        CursorCodec { key: key.to_vec() }
    }

    /// A codec whose key is derived from the server secret, so every instance sharing the
    /// secret accepts the others' cursors, and the secret itself is never used for two purposes.
    pub fn from_secret(secret: &[u8]) -> Self {
        let derived = CursorCodec::new(secret)
            .mac(b"tienda/listing-cursor/v1")
            .finalize()
            .into_bytes();
        CursorCodec::new(&derived)
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length; new_from_slice cannot fail for it.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable_hmac(),
        };
        mac.update(payload);
        mac
    }

    /// The opaque cursor of the page after `after`, carrying the sort, filters and limit.
    pub fn encode(&self, sort: Sort, filters: &Filters, limit: u64, after: After) -> String {
        let state = CursorState {
            version: VERSION,
            sort,
            filters: filters.clone(),
            limit,
            after,
        };
        let payload = serde_json::to_vec(&state).unwrap_or_default();
        let tag = self.mac(&payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&tag[..TAG_LEN])
        )
    }

    /// The state a cursor carries, if this server issued it unaltered.
    pub fn decode(&self, cursor: &str) -> Result<CursorState, InvalidCursor> {
        if cursor.len() > 4096 {
            return Err(InvalidCursor);
        }
        let (payload, tag) = cursor.split_once('.').ok_or(InvalidCursor)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| InvalidCursor)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| InvalidCursor)?;
        if tag.len() != TAG_LEN {
            return Err(InvalidCursor);
        }
        self.mac(&payload)
            .verify_truncated_left(&tag)
            .map_err(|_| InvalidCursor)?;
        let state: CursorState = serde_json::from_slice(&payload).map_err(|_| InvalidCursor)?;
        if state.version != VERSION {
            return Err(InvalidCursor);
        }
        Ok(state)
    }
}

#[cold]
fn unreachable_hmac() -> ! {
    // HMAC's key schedule hashes over-long keys, so no key length is rejected.
    panic!("HMAC-SHA256 rejected a key")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::listing::{KeyValue, SearchQuery, SortKey};
    use proptest::prelude::*;

    fn sample() -> (Sort, Filters, After) {
        let filters = Filters {
            q: Some(SearchQuery::parse("red shirt").unwrap()),
            min_price: Some(100),
            max_price: None,
            in_stock: Some(true),
        };
        let sort = Sort {
            key: SortKey::Name,
            descending: true,
        };
        let after = After {
            key: KeyValue::Text("Tee \"quoted\" ü".into()),
            id: 42,
        };
        (sort, filters, after)
    }

    #[test]
    fn a_cursor_round_trips() {
        let codec = CursorCodec::new(b"k");
        let (sort, filters, after) = sample();
        let cursor = codec.encode(sort, &filters, 7, after.clone());
        let state = codec.decode(&cursor).unwrap();
        assert_eq!(
            (state.sort, state.filters, state.limit, state.after),
            (sort, filters, 7, after)
        );
    }

    fn score_round_trips(score: f64) -> bool {
        let codec = CursorCodec::new(b"k");
        let (sort, filters, _) = sample();
        let after = After {
            key: KeyValue::Score(score),
            id: 1,
        };
        match codec
            .decode(&codec.encode(sort, &filters, 1, after))
            .unwrap()
            .after
            .key
        {
            KeyValue::Score(back) => back.to_bits() == score.to_bits(),
            _ => false,
        }
    }

    #[test]
    fn scores_round_trip_bit_for_bit() {
        // -2.0316435259928962e-6 is the bm25 score of issue 12's skipped products: read back
        // one unit in the last place off, the next page started past the rest of their tie.
        for score in [
            -2.031_643_525_992_896_2e-6,
            -0.000_001_234_567_890_123_f64,
            1e-300,
            -3.5,
            0.1 + 0.2,
            f64::MIN_POSITIVE,
            f64::MAX,
        ] {
            assert!(score_round_trips(score), "{score:e}");
        }
    }

    #[test]
    fn another_key_or_garbage_is_rejected() {
        let (sort, filters, after) = sample();
        let cursor = CursorCodec::new(b"one").encode(sort, &filters, 7, after);
        assert_eq!(CursorCodec::new(b"two").decode(&cursor), Err(InvalidCursor));
        for garbage in ["", ".", "abc", "abc.def", "!!!.!!!", &cursor[..cursor.len() - 1]] {
            assert_eq!(
                CursorCodec::new(b"one").decode(garbage),
                Err(InvalidCursor),
                "{garbage}"
            );
        }
    }

    proptest! {
        /// Any finite score a cursor carries comes back exactly: the next page starts right
        /// after the last row, not one unit in the last place before or after it.
        #[test]
        fn any_finite_score_round_trips_bit_for_bit(bits in any::<u64>()) {
            let score = f64::from_bits(bits);
            prop_assume!(score.is_finite());
            prop_assert!(score_round_trips(score), "{:e}", score);
        }

        #[test]
        fn any_single_character_change_is_rejected(index in 0usize..200, replacement in "[A-Za-z0-9_.-]") {
            let codec = CursorCodec::new(b"secret");
            let (sort, filters, after) = sample();
            let cursor = codec.encode(sort, &filters, 7, after);
            let index = index % cursor.len();
            let mut tampered = cursor.clone().into_bytes();
            tampered[index] = replacement.as_bytes()[0];
            let tampered = String::from_utf8(tampered).unwrap();
            prop_assume!(tampered != cursor);
            prop_assert_eq!(codec.decode(&tampered), Err(InvalidCursor));
        }
    }
}
