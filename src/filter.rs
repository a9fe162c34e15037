//! [`CountingFilter`]: which keys a set certainly does not contain, answered without a
//! lock.
//!
//! The store keeps two of them: one counts every key it holds, the other only the
//! keys that have a deadline (the keys that could refuse a call). Each key's hash picks
//! one counter out of a fixed array, and the counter says how many keys of the set
//! share it. A zero means the key is certainly not in the set, which a caller learns
//! from a single read of shared memory, with no lock and no write, so threads asking
//! about healthy hosts never contend. A non-zero counter (the key is there, or another
//! key shares its counter) sends the caller on to the map itself.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// How many counters: 64 KiB of them, so that a few thousand keys in a set leave
/// almost every counter at zero.
const CELLS: usize = 1 << 14;

/// Bits of a hash that pick a counter.
const CELL_BITS: u32 = CELLS.trailing_zeros();

/// The part of a key's hash the filters use, computed once per call and reused for
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

/// Counters of the keys in one set, by hash.
pub(crate) struct CountingFilter {
    cells: Box<[AtomicU32; CELLS]>,
}

impl CountingFilter {
    pub(crate) fn new() -> Self {
        Self {
            cells: zeroed_cells(),
        }
    }

    /// Returns whether the set may contain a key with this hash; `false` is certain.
    #[inline]
    pub(crate) fn may_contain(&self, hash: KeyHash) -> bool {
        self.cells[hash.cell()].load(Ordering::Acquire) != 0
    }

    /// Counts a key joining the set; call it before the key is seen to be in it.
    pub(crate) fn add(&self, hash: KeyHash) {
        self.cells[hash.cell()].fetch_add(1, Ordering::AcqRel);
    }

    /// Uncounts a key that left the set.
    pub(crate) fn remove(&self, hash: KeyHash) {
        self.cells[hash.cell()].fetch_sub(1, Ordering::AcqRel);
    }

    /// Returns every counter, for checking them against the set they count.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> Vec<u32> {
        let load = |cell: &AtomicU32| cell.load(Ordering::Acquire);
        self.cells.iter().map(load).collect()
    }

    /// Counts `hashes` as the counters of this filter would, for comparing with
    /// [`counts`](Self::counts).
    #[cfg(test)]
    pub(crate) fn expected_counts(hashes: impl IntoIterator<Item = KeyHash>) -> Vec<u32> {
        let mut counts = vec![0; CELLS];
        for hash in hashes {
            counts[hash.cell()] += 1;
        }
        counts
    }
}

/// All cells at zero, built on the heap: the fixed length lets every index by a
/// [`KeyHash`] go unchecked.
fn zeroed_cells() -> Box<[AtomicU32; CELLS]> {
    let cells: Box<[AtomicU32]> = (0..CELLS).map(|_| AtomicU32::new(0)).collect();
    cells.try_into().expect("exactly `CELLS` cells")
}

impl fmt::Debug for CountingFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let occupied = self
            .cells
            .iter()
            .filter(|cell| cell.load(Ordering::Relaxed) != 0)
            .count();
        f.debug_struct("CountingFilter")
            .field("occupied_cells", &occupied)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_counted_from_before_it_joins_until_it_leaves() {
        let filter = CountingFilter::new();
        let hash = |cell: u64, low: u64| KeyHash::from_hash(cell << 50 | low);
        let (key, neighbour, stranger) = (hash(7, 0), hash(7, 1), hash(8, 0));
        assert!(!filter.may_contain(key));

        filter.add(key);
        assert!(filter.may_contain(key));
        assert!(filter.may_contain(neighbour));
        assert!(!filter.may_contain(stranger));

        filter.add(neighbour);
        filter.remove(key);
        assert!(filter.may_contain(key));
        filter.remove(neighbour);
        assert!(!filter.may_contain(key));
        assert_eq!(filter.counts(), CountingFilter::expected_counts([]));
    }
}
