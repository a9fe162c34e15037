//! [`KeyBuf`]: an owned key that does not allocate for ordinary host names.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use arrayvec::ArrayString;

/// Keys up to this many bytes are stored inline: any host name of up to 40 bytes
/// with its port, which covers the host names almost every request uses, while keeping
/// the response futures that carry a key small.
pub(crate) const INLINE_CAPACITY: usize = 40;

/// An owned copy of a key, kept inline when it is short (as almost every host name
/// is) and on the heap otherwise.
///
/// Response futures keep the key of their request until the outcome is known; this
/// lets them do so without allocating on every request.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum KeyBuf {
    Inline(ArrayString<INLINE_CAPACITY>),
    Heap(Box<str>),
}

impl KeyBuf {
    /// Copies `key`.
    pub(crate) fn new(key: &str) -> Self {
        match ArrayString::from(key) {
            Ok(inline) => Self::Inline(inline),
            Err(_) => Self::Heap(key.into()),
        }
    }
}

impl From<Cow<'_, str>> for KeyBuf {
    fn from(key: Cow<'_, str>) -> Self {
        match key {
            Cow::Owned(key) if key.len() > INLINE_CAPACITY => Self::Heap(key.into_boxed_str()),
            key => Self::new(&key),
        }
    }
}

impl Deref for KeyBuf {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Self::Inline(key) => key,
            Self::Heap(key) => key,
        }
    }
}

impl fmt::Debug for KeyBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_inline_and_long_ones_on_the_heap() {
        assert!(matches!(KeyBuf::new("api.example.com"), KeyBuf::Inline(_)));
        let long = "a".repeat(INLINE_CAPACITY + 1);
        assert!(matches!(KeyBuf::new(&long), KeyBuf::Heap(_)));
        assert_eq!(&*KeyBuf::from(Cow::Owned(long.clone())), long);
    }
}
