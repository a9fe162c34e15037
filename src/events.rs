//! State changes worth telling the outside world about, and where they are reported.
//!
//! The registry collects an [`Event`] while it holds a shard lock and reports it only
//! after the lock is released, so a slow subscriber can never stall other keys.

use std::time::{Duration, Instant};

/// Why a key went into backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TripCause {
    /// Failures inside the window reached the threshold.
    Threshold,
    /// The server asked for a pause (for example with `Retry-After`).
    #[allow(dead_code)] // Its caller, `Retry-After` support in the layer, comes next.
    ServerHint,
}

impl TripCause {
    fn as_str(self) -> &'static str {
        match self {
            Self::Threshold => "threshold",
            Self::ServerHint => "server hint",
        }
    }
}

/// A state change of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event<'a> {
    /// The key went into backoff.
    Tripped {
        key: &'a str,
        failures: usize,
        until: Instant,
        /// How long the backoff lasts from the moment of the trip.
        backoff: Duration,
        cause: TripCause,
    },
    /// A success cleared a key that had been in backoff.
    Recovered { key: &'a str },
    /// A call was refused because the key is in backoff.
    ShortCircuited {
        key: &'a str,
        until: Instant,
        retry_after: Duration,
    },
}

/// Reports `event` as a `tracing` event: info for trips and recoveries, debug for each
/// refused call. Only the key is logged, never paths, queries or headers.
pub(crate) fn emit(event: &Event<'_>) {
    match *event {
        Event::Tripped {
            key,
            failures,
            backoff,
            cause,
            ..
        } => tracing::info!(
            key,
            failures,
            backoff_secs = backoff.as_secs_f64(),
            cause = cause.as_str(),
            "key entered backoff"
        ),
        Event::Recovered { key } => tracing::info!(key, "key recovered"),
        Event::ShortCircuited {
            key, retry_after, ..
        } => tracing::debug!(
            key,
            retry_after_secs = retry_after.as_secs_f64(),
            "call short-circuited"
        ),
    }
}
