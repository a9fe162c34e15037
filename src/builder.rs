//! [`BackoffRegistryBuilder`]: custom settings and clock for a registry.

use std::fmt;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::escalation::{Escalation, JitterSource, SeededJitter};
use crate::notify::DEFAULT_EVENT_CAPACITY;
use crate::registry::{BackoffRegistry, Parts};
use crate::rule::Settings;
use crate::store::DEFAULT_MAX_KEYS;

/// Builds a [`BackoffRegistry`] with custom defaults or clock.
///
/// Nothing is checked until [`build`](Self::build), which reports the first invalid
/// value as a [`ConfigError`].
///
/// ```
/// use std::time::Duration;
/// use url_backoff_registry::{BackoffRegistry, ConfigError};
///
/// let registry = BackoffRegistry::builder()
///     .window(Duration::from_secs(10))
///     .threshold(5)
///     .backoff(Duration::from_secs(30))
///     .build()
///     .unwrap();
/// # drop(registry);
///
/// let invalid = BackoffRegistry::builder().threshold(0).build();
/// assert_eq!(invalid.unwrap_err(), ConfigError::ZeroThreshold);
/// ```
#[must_use]
pub struct BackoffRegistryBuilder {
    settings: Settings,
    max_keys: usize,
    clock: Box<dyn Clock>,
    jitter: Box<dyn JitterSource>,
    event_capacity: usize,
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::MetricsOptions,
}

impl BackoffRegistryBuilder {
    /// Sets the default sliding window in which failures are counted (default 30 s).
    pub fn window(mut self, window: Duration) -> Self {
        self.settings.window = window;
        self
    }

    /// Sets the default number of failures inside the window that trips a key
    /// (default 3, at most [`MAX_THRESHOLD`](crate::MAX_THRESHOLD)).
    pub fn threshold(mut self, threshold: u32) -> Self {
        self.settings.threshold = threshold;
        self
    }

    /// Sets how long a tripped key stays in backoff by default (default 120 s).
    pub fn backoff(mut self, backoff: Duration) -> Self {
        self.settings.backoff = backoff;
        self
    }

    /// Sets the most keys the registry holds state for (default
    /// [`DEFAULT_MAX_KEYS`], 250,000; must be at least 1).
    ///
    /// Keys come from traffic, so this is what bounds memory when anyone can choose a
    /// URL. When the registry is full, a new key makes room by dropping, in this
    /// order: keys with nothing left in their window, healthy keys idle longest, and
    /// only then keys in backoff, those ending soonest first. A flood of new hosts
    /// therefore cannot make the registry forget a host that is in backoff while it
    /// has anything else to drop. Rules are kept regardless.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Escalates the backoff of keys that trip again and again (default: no
    /// escalation, every backoff lasts `backoff`). See [`Escalation`].
    pub fn escalation(mut self, escalation: Escalation) -> Self {
        self.settings.escalation = Some(escalation);
        self
    }

    /// Probes a key on recovery (default 0: off).
    ///
    /// When a key's backoff ends, at most `probes` calls are admitted until one of
    /// them finishes; the others are refused as if the key were still in backoff (with
    /// [`BackoffError::is_probing`](crate::BackoffError::is_probing) set). A probe's
    /// success clears the key; its failure trips it again at once, escalated if
    /// [`escalation`](Self::escalation) is on; a probe that is dropped, or whose outcome
    /// is neutral, frees its slot for the next call. Slots are shared by every clone of
    /// the registry and by the layer and [`track`](crate::BackoffRegistry::track)
    /// alike. With `probes(1)`, 50 calls arriving together when a backoff ends reach
    /// the host as exactly one.
    pub fn probes(mut self, probes: u32) -> Self {
        self.settings.probes = probes;
        self
    }

    /// Sets where [`Jitter`](crate::Jitter) draws its randomness (default
    /// [`SeededJitter::new`], seeded from the system). Inject a fixed source or
    /// [`SeededJitter::with_seed`] to make jittered backoffs repeatable.
    pub fn jitter_source(mut self, source: impl JitterSource) -> Self {
        self.jitter = Box::new(source);
        self
    }

    /// Sets how many events the [`subscribe`](crate::BackoffRegistry::subscribe)
    /// channel buffers for a receiver that falls behind (default
    /// [`DEFAULT_EVENT_CAPACITY`], 1,024; at least 1).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
        self
    }

    /// Sets what the registry reports through the `metrics` crate (feature `metrics`;
    /// default: every counter and gauge, without key labels). See
    /// [`MetricsOptions`](crate::MetricsOptions).
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, options: crate::metrics::MetricsOptions) -> Self {
        self.metrics = options;
        self
    }

    /// Sets the clock (default [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// Validates the settings and builds the registry.
    pub fn build(self) -> Result<BackoffRegistry, ConfigError> {
        BackoffRegistry::from_parts(Parts {
            settings: self.settings,
            max_keys: self.max_keys,
            clock: self.clock,
            jitter: self.jitter,
            event_capacity: self.event_capacity,
            #[cfg(feature = "metrics")]
            metrics: self.metrics,
        })
    }
}

impl Default for BackoffRegistryBuilder {
    fn default() -> Self {
        Self {
            settings: Settings::default(),
            max_keys: DEFAULT_MAX_KEYS,
            clock: Box::new(SystemClock),
            jitter: Box::new(SeededJitter::new()),
            event_capacity: DEFAULT_EVENT_CAPACITY,
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::MetricsOptions::default(),
        }
    }
}

impl fmt::Debug for BackoffRegistryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackoffRegistryBuilder")
            .field("window", &self.settings.window)
            .field("threshold", &self.settings.threshold)
            .field("backoff", &self.settings.backoff)
            .field("escalation", &self.settings.escalation)
            .field("probes", &self.settings.probes)
            .field("max_keys", &self.max_keys)
            .field("event_capacity", &self.event_capacity)
            .finish_non_exhaustive()
    }
}
