//! [`LastKey`]: a service's memory of the last authority it derived a key from.
//!
//! Most requests a client sends go to the host its previous request went to. When the
//! extractor promises that a key depends only on the URI's scheme and authority
//! ([`ExtractKey::depends_only_on_authority`]), a service remembers the last authority
//! it saw with the key and hash derived from it, and a request naming the same
//! authority skips normalising and hashing: one comparison of the authority text
//! replaces both.

use std::borrow::Cow;
use std::fmt;

use http::uri::Scheme;

use crate::extract::{ExtractKey, RequestHead};
use crate::hashing::{hash_text, Lookup};
use crate::key_buf::KeyBuf;

/// The last authority a service derived a key from, with that key and its hash.
///
/// Each service (and each clone of one) keeps its own, so reading it takes no lock.
#[derive(Clone, Default)]
pub(crate) struct LastKey {
    last: Option<Remembered>,
}

#[derive(Clone)]
struct Remembered {
    /// Compared with each request's scheme and authority, userinfo and all; never
    /// shown, so that userinfo cannot reach a log line.
    scheme: Option<Scheme>,
    authority: KeyBuf,
    key: KeyBuf,
    hash: u64,
}

impl LastKey {
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

        let remembered = self.last.as_ref().is_some_and(|last| {
            *last.authority == *authority && last.scheme.as_ref() == uri.scheme()
        });
        if !remembered {
            let key = extractor.extract_key(request)?;
            self.last = Some(Remembered {
                scheme: uri.scheme().cloned(),
                authority: KeyBuf::new(authority),
                hash: hash_text(&key),
                key: key.into(),
            });
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
        let key = self.last.as_ref().map(|last| &*last.key);
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
    /// ordinary host name.
    pub(crate) fn into_key_buf(self) -> KeyBuf {
        self.key.into()
    }
}
