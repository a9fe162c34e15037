//! The directory of the registries alive in this process.
//!
//! Each registry is listed under a number when it is built and struck off when it is
//! dropped. A call admitted to a key the registry held nothing for keeps only that
//! number, not a handle: cloning and dropping a handle costs two atomic writes to
//! memory shared by every thread, on every request, while such a call needs its
//! registry only in the rare case that it fails. Then it looks the number up here.

use std::sync::{PoisonError, RwLock, Weak};

use super::{BackoffRegistry, Shared};

/// Where a registry is listed: its slot, and which of the slot's tenants it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listing {
    slot: u32,
    generation: u64,
}

/// The slots, some taken by live registries, and the free ones.
struct Directory {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

struct Slot {
    /// Counts the registries the slot has held, so that a listing outlives its
    /// registry without ever finding the slot's next tenant.
    generation: u64,
    registry: Option<Weak<Shared>>,
}

static DIRECTORY: RwLock<Directory> = RwLock::new(Directory {
    slots: Vec::new(),
    free: Vec::new(),
});

/// Lists `registry`, which is being built, and returns where.
pub(super) fn enlist(registry: Weak<Shared>) -> Listing {
    // The directory is consistent between any two statements, so a panic elsewhere
    // while it was locked leaves nothing to repair.
    let mut directory = DIRECTORY.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(slot) = directory.free.pop() {
        let entry = &mut directory.slots[slot as usize];
        entry.registry = Some(registry);
        let generation = entry.generation;
        return Listing { slot, generation };
    }

    let slot = u32::try_from(directory.slots.len()).expect("fewer than 2^32 live registries");
    directory.slots.push(Slot {
        generation: 0,
        registry: Some(registry),
    });
    Listing {
        slot,
        generation: 0,
    }
}

/// Strikes off the registry listed at `listing`, which is being dropped.
pub(super) fn strike_off(listing: Listing) {
    let mut directory = DIRECTORY.write().unwrap_or_else(PoisonError::into_inner);
    let entry = &mut directory.slots[listing.slot as usize];
    if entry.generation != listing.generation {
        return;
    }
    entry.registry = None;
    entry.generation += 1;
    directory.free.push(listing.slot);
}

/// Returns a handle to the registry listed at `listing`, or `None` if it is gone.
pub(crate) fn find(listing: Listing) -> Option<BackoffRegistry> {
    let shared = {
        let directory = DIRECTORY.read().unwrap_or_else(PoisonError::into_inner);
        let entry = directory.slots.get(listing.slot as usize)?;
        if entry.generation != listing.generation {
            return None;
        }
        entry.registry.as_ref()?.upgrade()?
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
    fn a_reused_slot_is_not_found_through_an_old_listing() {
        let first = BackoffRegistry::new();
        let old = first.listing();
        drop(first);

        // Tests run in parallel and list registries of their own, so the next
        // registry may or may not take the freed slot; either way the old listing
        // finds nothing.
        let second = BackoffRegistry::new();
        assert_ne!(second.listing(), old);
        assert!(find(old).is_none());
        assert!(find(second.listing()).is_some());
    }
}
