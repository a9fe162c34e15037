//! Measures how much memory the registry holds per tracked key, beyond the key text.
//!
//! For 1,000, 100,000 and 1,000,000 distinct keys it builds a registry with room for
//! all of them, records one failure on each, and counts the bytes the registry still
//! holds at the end with a counting global allocator (the `allocation-counter` crate's,
//! which counts per thread; everything here runs on one thread).
//!
//! ```sh
//! cargo run --release --example memory
//! ```
//!
//! Bytes are the sizes requested from the allocator. The allocator's own overhead per
//! allocation (typically 8 to 16 bytes for small blocks) comes on top, which is why the
//! allocations per key are printed too.

use std::fmt::{self, Write as _};

use url_backoff_registry::{BackoffRegistry, ManualClock};

/// The sizes measured, the last one being the one the target is about.
pub(crate) const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];

/// Bytes per key the registry aims to stay under at 1,000,000 keys.
pub(crate) const TARGET_BYTES_PER_KEY: f64 = 96.0;

/// What tracking `keys` distinct keys, with one failure each, costs the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Measurement {
    /// How many keys were tracked.
    pub(crate) keys: usize,
    /// Bytes held by the registry with every key tracked.
    pub(crate) total_bytes: i64,
    /// Bytes held by the registry before its first key: its fixed cost.
    pub(crate) empty_bytes: i64,
    /// The sum of the keys' lengths.
    pub(crate) key_text_bytes: i64,
    /// Live allocations the keys added.
    pub(crate) allocations: i64,
}

impl Measurement {
    /// Bytes per key beyond the key text.
    ///
    /// Subtracted from the total: the empty registry's fixed cost, and the key text,
    /// that is the sum of the keys' lengths. Today the registry stores each key as a
    /// `Box<str>`, one allocation of exactly the key's length, so what is subtracted is
    /// precisely those allocations; the box's pointer and length, inside the map's
    /// slot, stay counted, as they are a cost of the layout and not of the text.
    pub(crate) fn bytes_per_key(&self) -> f64 {
        let beyond = self.total_bytes - self.empty_bytes - self.key_text_bytes;
        beyond as f64 / self.keys as f64
    }

    /// Live allocations per key.
    pub(crate) fn allocations_per_key(&self) -> f64 {
        self.allocations as f64 / self.keys as f64
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory: {} keys, {:.1} bytes per key beyond the key text \
             (total {} bytes, empty registry {}, key text {}, {:.2} allocations per key)",
            self.keys,
            self.bytes_per_key(),
            self.total_bytes,
            self.empty_bytes,
            self.key_text_bytes,
            self.allocations_per_key(),
        )
    }
}

/// Builds a registry, records one failure on each of `keys` distinct keys
/// (`host-<n>.example`), and measures what it holds.
pub(crate) fn measure(keys: usize) -> Measurement {
    let mut registry = None;
    let empty = allocation_counter::measure(|| {
        let built = BackoffRegistry::builder()
            .clock(ManualClock::new())
            .max_keys(keys.max(1) * 2)
            .build()
            .expect("valid settings");
        registry = Some(built);
    });
    let registry = registry.expect("built above");

    // The key buffer is allocated before counting starts and reused for every key.
    let mut key = String::with_capacity(32);
    let mut key_text_bytes = 0;
    let filled = allocation_counter::measure(|| {
        for n in 0..keys {
            key.clear();
            write!(key, "host-{n}.example").expect("writing to a String cannot fail");
            key_text_bytes += key.len();
            registry.record_failure(&key);
        }
    });
    assert_eq!(registry.len(), keys, "every key is tracked");

    Measurement {
        keys,
        total_bytes: empty.bytes_current + filled.bytes_current,
        empty_bytes: empty.bytes_current,
        key_text_bytes: i64::try_from(key_text_bytes).expect("fits"),
        allocations: filled.count_current,
    }
}

fn main() {
    let mut last = None;
    for keys in SIZES {
        let measurement = measure(keys);
        println!("{measurement}");
        last = Some(measurement);
    }

    let last = last.expect("at least one size");
    println!(
        "memory: {} keys, {:.1} bytes per key beyond the key text (target {})",
        last.keys,
        last.bytes_per_key(),
        TARGET_BYTES_PER_KEY,
    );
}
