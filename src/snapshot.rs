//! [`KeySnapshot`]: one key as [`BackoffRegistry::snapshot`] saw it.
//!
//! [`BackoffRegistry::snapshot`]: crate::BackoffRegistry::snapshot

use std::time::{Duration, Instant};

/// One key's state at the moment of a
/// [`snapshot`](crate::BackoffRegistry::snapshot).
///
/// With the `serde` feature it serialises to JSON for an admin endpoint; the opaque
/// `backoff_until` instant is left out there, and the time left is given as
/// `retry_after_secs` instead.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct KeySnapshot {
    /// The key.
    pub key: String,
    /// Remembered failures inside the key's window (at most its threshold).
    pub failures_in_window: usize,
    /// Whether calls to the key are being held back.
    pub in_backoff: bool,
    /// When the current backoff ends.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub backoff_until: Option<Instant>,
    /// How long the current backoff still runs.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "retry_after_secs", serialize_with = "as_secs")
    )]
    pub retry_after: Option<Duration>,
    /// Whether the backoff is over and the key waits for a probe to succeed.
    pub probing: bool,
    /// How many times the key tripped since the registry last forgot it.
    pub trips: u32,
    /// The escalation multiplier the key remembers: that of its current backoff, or
    /// of its last one faded by the health since (one step per backoff-length); 1
    /// without escalation. A trip soon after a backoff ends escalates one step beyond
    /// it.
    pub multiplier: f64,
}

#[cfg(feature = "serde")]
fn as_secs<S: serde::Serializer>(
    retry_after: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match retry_after {
        Some(left) => serializer.serialize_some(&left.as_secs_f64()),
        None => serializer.serialize_none(),
    }
}
