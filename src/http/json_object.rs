//! A request body's JSON object, read in one pass into at most [`MAX_KEPT_FIELDS`] fields.
//!
//! No resource has more than a handful of fields, so a body with more is invalid whatever they
//! hold. The first [`MAX_KEPT_FIELDS`] are kept by name (an index finds each in O(1)); the rest
//! are only checked for repeats, through a keyed 64-bit hash of each name, and counted. A body
//! of 100,000 fields thus costs one pass and a few bytes per field, not a string, a boxed value
//! and an index entry each.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::BuildHasher;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::error::{ApiError, FieldError};
use crate::domain::product::Invalid;

/// How many fields of a body are kept by name; any resource has far fewer.
pub const MAX_KEPT_FIELDS: usize = 64;

/// A request body that is a JSON object, its first fields in the order they were sent.
#[derive(Debug)]
pub struct JsonObject {
    /// Each kept field in the order sent; its value is taken out once read.
    entries: Vec<(String, Option<Box<RawValue>>)>,
    /// Where each kept name sits in `entries`. (std's hasher is keyed per process, so chosen
    /// names cannot make its look-ups collide.)
    index: HashMap<String, usize>,
    /// How many fields came after the kept ones.
    overflow: usize,
}

impl JsonObject {
    /// Reads a body: one pass over its bytes, whatever they hold.
    pub fn read(bytes: &[u8]) -> Result<Self, ApiError> {
        serde_json::from_slice::<JsonObject>(bytes).map_err(|error| match error.classify() {
            serde_json::error::Category::Data => ApiError::Validation(
                vec![FieldError::new(
                    "body",
                    Invalid::new("invalid_type", error.to_string()),
                )]
                .into(),
            ),
            _ => ApiError::MalformedJson(error.to_string()),
        })
    }

    /// Takes the value of a kept field, once.
    pub fn take(&mut self, name: &str) -> Option<Box<RawValue>> {
        let at = *self.index.get(name)?;
        self.entries.get_mut(at)?.1.take()
    }

    /// Whether the body had more fields than were kept: then it is invalid, and a field not
    /// found may still have been sent.
    pub fn overflowed(&self) -> bool {
        self.overflow > 0
    }

    /// The kept fields nobody took, in the order sent, and how many were not kept.
    pub fn into_unread(self) -> (impl Iterator<Item = String>, usize) {
        let unread = self
            .entries
            .into_iter()
            .filter_map(|(name, value)| value.map(|_| name));
        (unread, self.overflow)
    }
}

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = JsonObject;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonObject, A::Error> {
        let mut entries = Vec::new();
        let mut index = HashMap::new();
        while entries.len() < MAX_KEPT_FIELDS {
            let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? else {
                return Ok(JsonObject {
                    entries,
                    index,
                    overflow: 0,
                });
            };
            match index.entry(key) {
                Entry::Occupied(taken) => return Err(duplicate(taken.key())),
                Entry::Vacant(free) => {
                    entries.push((free.key().clone(), Some(value)));
                    free.insert(entries.len() - 1);
                }
            }
        }
        let hasher = RandomState::new();
        let mut seen = HashSet::new();
        let mut overflow = 0;
        while let Some(hash) = map.next_key_seed(NameHash {
            kept: &index,
            hasher: &hasher,
        })? {
            // A 64-bit keyed hash: a false repeat has odds of about n^2 / 2^65, and the key is
            // drawn per body, so no client can aim for one.
            if !seen.insert(hash) {
                return Err(de::Error::custom("duplicate field: a name is repeated"));
            }
            map.next_value::<IgnoredAny>()?;
            overflow += 1;
        }
        Ok(JsonObject {
            entries,
            index,
            overflow,
        })
    }
}

fn duplicate<E: de::Error>(name: &str) -> E {
    E::custom(format!("duplicate field `{name}`"))
}

/// Reads a field name into its keyed hash without keeping it; a name among the kept ones is a
/// repeat at once.
struct NameHash<'a> {
    kept: &'a HashMap<String, usize>,
    hasher: &'a RandomState,
}

impl<'de> DeserializeSeed<'de> for NameHash<'_> {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for NameHash<'_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<u64, E> {
        if self.kept.contains_key(name) {
            return Err(duplicate(name));
        }
        Ok(self.hasher.hash_one(name))
    }
}
