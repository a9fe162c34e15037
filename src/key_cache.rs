//! [`LastKey`]: a service's memory of the last authority it derived a key from.
//!
//! Most requests a client sends go to the host its previous request went to. When the
//! extractor promises that a key depends only on the URI's scheme and authority
//! ([`ExtractKey::depends_only_on_authority`]), a service remembers the last scheme
//! and authority it saw with the key and hash derived from them, and a request naming
//! the same ones skips normalising and hashing: comparing the text replaces both.
//!
//! The memory lives inline in the service, so remembering allocates nothing and
//! cloning a service stays a plain copy. A scheme, authority or key too long for it is
//! not remembered; such requests derive their key every time, as without the memory.

use std::borrow::Cow;
use std::fmt;

use arrayvec::ArrayString;

use crate::extract::{ExtractKey, RequestHead};
use crate::hashing::{hash_text, Lookup};
use crate::key_buf::{KeyBuf, INLINE_CAPACITY};

/// The longest scheme remembered, in bytes.
const SCHEME_CAPACITY: usize = 16;

/// The longest authority remembered, in bytes, userinfo and port included.
const AUTHORITY_CAPACITY: usize = 64;

/// The last authority a service derived a key from, with that key and its hash.
///
/// Each service (and each clone of one) keeps its own, so reading it takes no lock.
#[derive(Clone, Default)]
pub(crate) struct LastKey {
    last: Option<Remembered>,
}

#[derive(Clone)]
pub(crate) struct Remembered {
    /// Compared byte for byte with each request's scheme and authority, userinfo and
    /// all; never shown, so that userinfo cannot reach a log line.
    scheme: ArrayString<SCHEME_CAPACITY>,
    authority: ArrayString<AUTHORITY_CAPACITY>,
    key: ArrayString<INLINE_CAPACITY>,
    hash: u64,
}

impl Remembered {
    /// Remembers `key` for `scheme` and `authority`, or returns `None` if one of them
    /// is too long to keep inline.
    fn new(scheme: &str, authority: &str, key: &str) -> Option<Self> {
        Some(Self {
            scheme: ArrayString::from(scheme).ok()?,
            authority: ArrayString::from(authority).ok()?,
            key: ArrayString::from(key).ok()?,
            hash: hash_text(key),
        })
    }

    fn matches(&self, scheme: &str, authority: &str) -> bool {
        self.authority.as_str() == authority && self.scheme.as_str() == scheme
    }

    /// The key, for asking the registry about it.
    #[inline]
    pub(crate) fn lookup(&self) -> Lookup<'_> {
        Lookup::with_hash(&self.key, self.hash)
    }

    /// A copy of the key that a response future can own: a plain copy of its bytes.
    #[inline]
    pub(crate) fn key_buf(&self) -> KeyBuf {
        KeyBuf::Inline(self.key)
    }
}

impl LastKey {
    /// Returns the remembered key, whatever it was derived from.
    #[inline]
    pub(crate) fn remembered(&self) -> Option<&Remembered> {
        self.last.as_ref()
    }

    /// Returns the remembered key if `scheme` and `authority` are the ones it was
    /// derived from.
    #[inline]
    pub(crate) fn recall(&self, scheme: &str, authority: &str) -> Option<&Remembered> {
        self.last
            .as_ref()
            .filter(|last| last.matches(scheme, authority))
    }

    /// Returns the key of `request` as `extractor` chooses it, with its hash, or `None`
    /// for a request that passes untracked.
    pub(crate) fn derive<'a, K: ExtractKey>(
        &'a mut self,
        extractor: &K,
        request: RequestHead<'a>,
    ) -> Option<DerivedKey<'a>> {
        let uri = request.uri();
        let authority = match uri.authority() {
            Some(authority) if extractor.depends_only_on_authority() => authority.as_str(),
            _ => return extractor.extract_key(request).map(DerivedKey::hash),
        };
        let scheme = uri.scheme_str().unwrap_or("");

        let remembered = self
            .last
            .as_ref()
            .is_some_and(|last| last.matches(scheme, authority));
        if !remembered {
            let key = extractor.extract_key(request)?;
            match Remembered::new(scheme, authority, &key) {
                Some(last) => self.last = Some(last),
                None => return Some(DerivedKey::hash(key)),
            }
        }

        let last = self.last.as_ref()?;
        Some(DerivedKey {
            key: Cow::Borrowed(&last.key),
            hash: last.hash,
        })
    }
}

impl fmt::Debug for LastKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.last.as_ref().map(|last| last.key.as_str());
        f.debug_struct("LastKey").field("key", &key).finish()
    }
}

/// A request's key and its hash.
#[derive(Debug)]
pub(crate) struct DerivedKey<'a> {
    key: Cow<'a, str>,
    hash: u64,
}

impl<'a> DerivedKey<'a> {
    fn hash(key: Cow<'a, str>) -> Self {
        let hash = hash_text(&key);
        Self { key, hash }
    }

    /// The key, for asking the registry about it.
    pub(crate) fn lookup(&self) -> Lookup<'_> {
        Lookup::with_hash(&self.key, self.hash)
    }

    /// Turns the key into one the response future can own, without allocating for an
    /// ordinary host name, nor again for a key already owned.
    pub(crate) fn into_key_buf(self) -> KeyBuf {
        self.key.into()
    }
}
