//! [`Presence`]: which keys the store certainly does not hold, answered without a lock.
//!
//! Almost every request goes to a host the registry knows nothing about. Each key's
//! hash picks one counter out of a fixed array; the counter says how many keys with
//! that hash the store holds. A zero means the key is certainly absent, which a call
//! learns from a single read of shared memory, with no lock and no write, so threads
//! asking about healthy hosts never contend. A non-zero counter (the key is there, or
//! another key shares its counter) sends the call on to the map itself.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// How many counters: 64 KiB of them, so that a few thousand tracked keys leave
/// almost every counter at zero.
const CELLS: usize = 1 << 14;

/// Bits of a hash that pick a counter.
const CELL_BITS: u32 = CELLS.trailing_zeros();

/// The part of a key's hash the filter uses, computed once per call and reused for
/// every question about the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyHash(u32);

impl KeyHash {
    /// Keeps the top bits of a full 64-bit hash.
    #[inline]
    pub(crate) fn from_hash(hash: u64) -> Self {
        Self((hash >> 32) as u32)
    }

    #[inline]
    fn cell(self) -> usize {
        (self.0 >> (u32::BITS - CELL_BITS)) as usize
    }
}

/// Counters of the keys the store holds, by hash.
pub(crate) struct Presence {
    cells: Box<[AtomicU32]>,
}

impl Presence {
    pub(crate) fn new() -> Self {
        Self {
            cells: (0..CELLS).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// Returns whether the store may hold a key with this hash; `false` is certain.
    #[inline]
    pub(crate) fn may_hold(&self, hash: KeyHash) -> bool {
        self.cells[hash.cell()].load(Ordering::Acquire) != 0
    }

    /// Counts a key about to be inserted; call it before the key becomes visible.
    pub(crate) fn added(&self, hash: KeyHash) {
        self.cells[hash.cell()].fetch_add(1, Ordering::AcqRel);
    }

    /// Uncounts a key that was removed.
    pub(crate) fn removed(&self, hash: KeyHash) {
        self.cells[hash.cell()].fetch_sub(1, Ordering::AcqRel);
    }
}

impl fmt::Debug for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let occupied = self
            .cells
            .iter()
            .filter(|cell| cell.load(Ordering::Relaxed) != 0)
            .count();
        f.debug_struct("Presence")
            .field("occupied_cells", &occupied)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_present_from_before_its_insert_until_its_removal() {
        let presence = Presence::new();
        let hash = |cell: u64, low: u64| KeyHash::from_hash(cell << 50 | low);
        let (key, neighbour, stranger) = (hash(7, 0), hash(7, 1), hash(8, 0));
        assert!(!presence.may_hold(key));

        presence.added(key);
        assert!(presence.may_hold(key));
        assert!(presence.may_hold(neighbour));
        assert!(!presence.may_hold(stranger));

        presence.added(neighbour);
        presence.removed(key);
        assert!(presence.may_hold(key));
        presence.removed(neighbour);
        assert!(!presence.may_hold(key));
    }
}
