//! The directory of the registries alive in this process.
//!
//! Each registry is listed under a number when it is built and struck off when it is
//! dropped. A call admitted to a key the registry held nothing for keeps only that
//! number, not a handle: cloning and dropping a handle costs two atomic writes to
//! memory shared by every thread, on every request, while such a call needs its
//! registry only in the rare case that it fails. Then it looks the number up here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, PoisonError, RwLock, Weak};

use super::{BackoffRegistry, Shared};

/// The number a registry is listed under. Numbers are never reused, so a listing
/// that outlives its registry finds nothing rather than another registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listing(u64);

/// The live registries by number.
type Directory = HashMap<u64, Weak<Shared>, foldhash::fast::FixedState>;

static DIRECTORY: LazyLock<RwLock<Directory>> = LazyLock::new(RwLock::default);

/// The next number to hand out.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Lists `registry`, which is being built, and returns its number.
pub(super) fn enlist(registry: Weak<Shared>) -> Listing {
    let number = NEXT.fetch_add(1, Ordering::Relaxed);

    // Every change to the directory is a single insert or remove, so a panic elsewhere
    // while it was locked leaves nothing half done.
    let mut directory = DIRECTORY.write().unwrap_or_else(PoisonError::into_inner);
    directory.insert(number, registry);
    Listing(number)
}

/// Strikes off the registry listed as `listing`, which is being dropped.
pub(super) fn strike_off(listing: Listing) {
    let mut directory = DIRECTORY.write().unwrap_or_else(PoisonError::into_inner);
    directory.remove(&listing.0);
}

/// Returns a handle to the registry listed as `listing`, or `None` if it is gone.
pub(crate) fn find(listing: Listing) -> Option<BackoffRegistry> {
    let shared = {
        let directory = DIRECTORY.read().unwrap_or_else(PoisonError::into_inner);
        directory.get(&listing.0)?.upgrade()?
    };
    // The lock is released before the handle can be dropped: dropping the last one
    // strikes the registry off, which takes the lock again.
    Some(BackoffRegistry::from_shared(shared))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_finds_its_registry_until_it_is_dropped() {
        let registry = BackoffRegistry::new();
        let listing = registry.listing();
        registry.record_failure("a.example");

        let found = find(listing).expect("listed while alive");
        assert_eq!(found.stats("a.example").failures_in_window, 1);
        drop(found);
        drop(registry);
        assert!(find(listing).is_none());
    }

    #[test]
    fn a_number_is_never_handed_out_twice() {
        let first = BackoffRegistry::new();
        let old = first.listing();
        drop(first);

        let second = BackoffRegistry::new();
        assert_ne!(second.listing(), old);
        assert!(find(old).is_none());
        assert!(find(second.listing()).is_some());
    }
}
