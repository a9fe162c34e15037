//! Hashing a key once per call.
//!
//! A call asks about its key several times (the two filters, perhaps the map, and
//! again when its outcome arrives). Each key is hashed once, with foldhash seeded at
//! random when the process first hashes a key, and every later question reuses that
//! hash: the map's own hasher only passes it through. An attacker who chooses keys
//! cannot predict collisions without knowing the seed.
//!
//! The map stores plain [`StoredKey`]s (the key text, 16 bytes) and is searched with a
//! [`Lookup`] (the text and its hash); both are seen through [`dyn KeyText`](KeyText),
//! so that they compare by text and hash alike.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::OnceLock;

use foldhash::fast::RandomState;
use nohash_hasher::BuildNoHashHasher;

/// The map's hasher: keys arrive already hashed.
pub(crate) type PassThrough = BuildNoHashHasher<u64>;

/// Hashes key text with the process's random seed.
pub(crate) fn hash_text(text: &str) -> u64 {
    static SEED: OnceLock<RandomState> = OnceLock::new();
    SEED.get_or_init(RandomState::default).hash_one(text)
}

/// What the map needs of a key: its text, and its hash.
pub(crate) trait KeyText {
    fn text(&self) -> &str;
    fn key_hash(&self) -> u64;
}

impl Hash for dyn KeyText + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.key_hash());
    }
}

impl PartialEq for dyn KeyText + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

impl Eq for dyn KeyText + '_ {}

/// A key as the map stores it. Its hash is computed again only when the map grows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredKey(Box<str>);

impl StoredKey {
    pub(crate) fn new(text: &str) -> Self {
        Self(text.into())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl KeyText for StoredKey {
    fn text(&self) -> &str {
        &self.0
    }

    fn key_hash(&self) -> u64 {
        hash_text(&self.0)
    }
}

impl Hash for StoredKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn KeyText).hash(state);
    }
}

impl<'a> Borrow<dyn KeyText + 'a> for StoredKey {
    fn borrow(&self) -> &(dyn KeyText + 'a) {
        self
    }
}

/// A key being looked up, hashed once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lookup<'a> {
    text: &'a str,
    hash: u64,
}

impl<'a> Lookup<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self::with_hash(text, hash_text(text))
    }

    /// A key hashed earlier: `hash` must be [`hash_text`] of `text`.
    #[inline]
    pub(crate) fn with_hash(text: &'a str, hash: u64) -> Self {
        Self { text, hash }
    }

    /// The key's hash.
    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    /// The key's text.
    #[inline]
    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    /// The key as the map compares it.
    pub(crate) fn as_dyn(&self) -> &(dyn KeyText + 'a) {
        self
    }
}

impl KeyText for Lookup<'_> {
    fn text(&self) -> &str {
        self.text
    }

    fn key_hash(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn stored_keys_and_lookups_hash_and_compare_alike() {
        let mut map: HashMap<StoredKey, u8, PassThrough> = HashMap::default();
        map.insert(StoredKey::new("api.example.com"), 1);
        map.insert(StoredKey::new("other.example.com"), 2);

        let found = map.get(Lookup::new("api.example.com").as_dyn());
        assert_eq!(found, Some(&1));
        assert_eq!(map.get(Lookup::new("missing.example").as_dyn()), None);
        assert_eq!(hash_text("a"), hash_text("a"));
        assert_ne!(hash_text("a"), hash_text("b"));
    }
}
