//! [`BackoffRegistryBuilder`]: custom settings and clock for a registry.

use std::fmt;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::registry::BackoffRegistry;
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

    /// Sets the clock (default [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// Validates the settings and builds the registry.
    pub fn build(self) -> Result<BackoffRegistry, ConfigError> {
        BackoffRegistry::from_parts(self.settings, self.max_keys, self.clock)
    }
}

impl Default for BackoffRegistryBuilder {
    fn default() -> Self {
        Self {
            settings: Settings::default(),
            max_keys: DEFAULT_MAX_KEYS,
            clock: Box::new(SystemClock),
        }
    }
}

impl fmt::Debug for BackoffRegistryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackoffRegistryBuilder")
            .field("window", &self.settings.window)
            .field("threshold", &self.settings.threshold)
            .field("backoff", &self.settings.backoff)
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}
