//! [`Stats`]: a point-in-time view of one key.

use std::time::Instant;

/// What the registry knows about one key at one moment.
///
/// Returned by [`BackoffRegistry::stats`](crate::BackoffRegistry::stats). An unknown
/// key reports the default: no failures, not in backoff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Remembered failures inside the key's window. At most the key's threshold: the
    /// registry keeps only the most recent `threshold` failures of a key.
    pub failures_in_window: usize,
    /// Whether calls to the key are being held back.
    pub in_backoff: bool,
    /// When the current backoff ends; `None` when not in backoff.
    pub backoff_until: Option<Instant>,
}
