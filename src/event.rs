//! [`BackoffEvent`]: what happened to a key, for listeners.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A state change of one key, delivered to every receiver of
/// [`BackoffRegistry::subscribe`](crate::BackoffRegistry::subscribe).
///
/// Events describe the key only: never a path, a query, a header or userinfo.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BackoffEvent {
    /// The key went into backoff.
    Tripped {
        /// The key.
        key: Arc<str>,
        /// Failures inside the window at the trip.
        failures: usize,
        /// When the backoff ends.
        until: Instant,
        /// When the backoff ends on the wall clock, if `SystemTime` can show it.
        until_wall: Option<SystemTime>,
        /// How long the backoff lasts from the trip.
        backoff: Duration,
        /// What tripped the key.
        cause: TripCause,
    },
    /// A key already in backoff was held there longer, by a server's hint.
    Extended {
        /// The key.
        key: Arc<str>,
        /// When the backoff now ends.
        until: Instant,
        /// When the backoff now ends on the wall clock, if `SystemTime` can show it.
        until_wall: Option<SystemTime>,
        /// How long the backoff lasts from now.
        backoff: Duration,
        /// What extended it.
        cause: TripCause,
    },
    /// A success cleared a key that had tripped.
    Recovered {
        /// The key.
        key: Arc<str>,
    },
    /// An operator released the key with
    /// [`BackoffRegistry::release`](crate::BackoffRegistry::release).
    Released {
        /// The key.
        key: Arc<str>,
    },
    /// A call was refused (or, in shadow mode, would have been).
    ShortCircuited {
        /// The key.
        key: Arc<str>,
        /// When the backoff ends (for a refusal while probing: when it ended).
        until: Instant,
        /// How long the caller should wait.
        retry_after: Duration,
        /// Whether the backoff is over and the call was refused because the key's probe
        /// slots were taken.
        probing: bool,
        /// Whether the layer is in shadow mode and let the call through anyway.
        shadow: bool,
    },
    /// A call was admitted as the probe of a key whose backoff ended.
    ProbeAdmitted {
        /// The key.
        key: Arc<str>,
    },
    /// A probe finished.
    ProbeFinished {
        /// The key.
        key: Arc<str>,
        /// How it went.
        result: ProbeResult,
    },
    /// The key was dropped to make room for another one (see
    /// [`max_keys`](crate::BackoffRegistryBuilder::max_keys)).
    Evicted {
        /// The key.
        key: Arc<str>,
        /// Whether it was in backoff when it was dropped.
        in_backoff: bool,
    },
}

impl BackoffEvent {
    /// Returns the key the event is about.
    pub fn key(&self) -> &str {
        match self {
            Self::Tripped { key, .. }
            | Self::Extended { key, .. }
            | Self::Recovered { key }
            | Self::Released { key }
            | Self::ShortCircuited { key, .. }
            | Self::ProbeAdmitted { key }
            | Self::ProbeFinished { key, .. }
            | Self::Evicted { key, .. } => key,
        }
    }
}

/// What put a key into backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TripCause {
    /// Failures inside the window reached the threshold.
    Threshold,
    /// The server asked for a pause (a `Retry-After` header).
    ServerHint,
    /// The probe admitted after a backoff failed.
    ProbeFailed,
    /// An operator called
    /// [`BackoffRegistry::force_backoff`](crate::BackoffRegistry::force_backoff).
    Forced,
}

impl TripCause {
    /// Returns a short lower-case name, as logged: `threshold`, `server hint`, `probe
    /// failed` or `forced`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Threshold => "threshold",
            Self::ServerHint => "server hint",
            Self::ProbeFailed => "probe failed",
            Self::Forced => "forced",
        }
    }
}

/// How a probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProbeResult {
    /// It succeeded: the key is cleared.
    Succeeded,
    /// It failed: the key is back in backoff.
    Failed,
    /// It was dropped, or its outcome said nothing about the key's health: the slot is
    /// free for the next call.
    Abandoned,
}

impl ProbeResult {
    /// Returns a short lower-case name, as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Abandoned => "abandoned",
        }
    }
}
