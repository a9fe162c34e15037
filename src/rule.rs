//! Backoff settings: the public [`Rule`] overrides and the resolved [`Policy`] the
//! registry works with.

use std::time::Duration;

use crate::error::ConfigError;
use crate::time::{duration_to_nanos, Tick};

/// Default sliding window in which failures are counted.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);

/// Default number of failures inside the window that puts a key into backoff.
pub const DEFAULT_THRESHOLD: u32 = 3;

/// Default time a key stays in backoff once it trips.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(120);

/// Largest accepted threshold.
///
/// The registry remembers the most recent `threshold` failures of each key, so the
/// threshold is also the bound on a key's memory: at most this many 8-byte timestamps.
pub const MAX_THRESHOLD: u32 = 1 << 16;

/// Per-key overrides of the registry's window, threshold and backoff.
///
/// Fields left unset follow the registry's defaults, now and if the defaults are the
/// ones the registry was built with. Apply a rule with
/// [`BackoffRegistry::set_rule`](crate::BackoffRegistry::set_rule).
///
/// ```
/// use std::time::Duration;
/// use url_backoff_registry::Rule;
///
/// // A flaky dependency: trip after 10 failures, but back off for only 15 seconds.
/// let rule = Rule::default().threshold(10).backoff(Duration::from_secs(15));
/// assert_eq!(rule.threshold_override(), Some(10));
/// assert_eq!(rule.window_override(), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rule {
    window: Option<Duration>,
    threshold: Option<u32>,
    backoff: Option<Duration>,
}

impl Rule {
    /// Sets the sliding window in which failures are counted.
    #[must_use]
    pub fn window(mut self, window: Duration) -> Self {
        self.window = Some(window);
        self
    }

    /// Sets how many failures inside the window trip the key.
    #[must_use]
    pub fn threshold(mut self, threshold: u32) -> Self {
        self.threshold = Some(threshold);
        self
    }

    /// Sets how long the key stays in backoff once it trips.
    #[must_use]
    pub fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Returns the window this rule sets, if any.
    pub fn window_override(&self) -> Option<Duration> {
        self.window
    }

    /// Returns the threshold this rule sets, if any.
    pub fn threshold_override(&self) -> Option<u32> {
        self.threshold
    }

    /// Returns the backoff this rule sets, if any.
    pub fn backoff_override(&self) -> Option<Duration> {
        self.backoff
    }
}

/// A complete, validated set of settings in the registry's tick units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    pub(crate) window: Tick,
    pub(crate) threshold: u32,
    pub(crate) backoff: Tick,
}

impl Policy {
    /// Validates the given settings and converts them to ticks.
    pub(crate) fn new(
        window: Duration,
        threshold: u32,
        backoff: Duration,
    ) -> Result<Self, ConfigError> {
        if window.is_zero() {
            return Err(ConfigError::ZeroWindow);
        }
        if backoff.is_zero() {
            return Err(ConfigError::ZeroBackoff);
        }
        if threshold == 0 {
            return Err(ConfigError::ZeroThreshold);
        }
        if threshold > MAX_THRESHOLD {
            return Err(ConfigError::ThresholdTooLarge {
                threshold,
                max: MAX_THRESHOLD,
            });
        }

        Ok(Self {
            window: duration_to_nanos(window),
            threshold,
            backoff: duration_to_nanos(backoff),
        })
    }

    /// Resolves `rule` against `defaults`: every field the rule leaves unset comes from
    /// the defaults.
    pub(crate) fn with_rule(defaults: &Settings, rule: &Rule) -> Result<Self, ConfigError> {
        Self::new(
            rule.window.unwrap_or(defaults.window),
            rule.threshold.unwrap_or(defaults.threshold),
            rule.backoff.unwrap_or(defaults.backoff),
        )
    }
}

/// The registry-wide settings as the user gave them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) window: Duration,
    pub(crate) threshold: u32,
    pub(crate) backoff: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            threshold: DEFAULT_THRESHOLD,
            backoff: DEFAULT_BACKOFF,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_fields_fall_back_to_defaults() {
        let defaults = Settings::default();
        let rule = Rule::default().threshold(7);
        let policy = Policy::with_rule(&defaults, &rule).unwrap();
        assert_eq!(policy.threshold, 7);
        assert_eq!(policy.window, 30_000_000_000);
        assert_eq!(policy.backoff, 120_000_000_000);
    }

    #[test]
    fn invalid_values_are_rejected_in_a_fixed_order() {
        let zero = Duration::ZERO;
        let one = Duration::from_secs(1);
        assert_eq!(Policy::new(zero, 0, zero), Err(ConfigError::ZeroWindow));
        assert_eq!(Policy::new(one, 0, zero), Err(ConfigError::ZeroBackoff));
        assert_eq!(Policy::new(one, 0, one), Err(ConfigError::ZeroThreshold));
        assert_eq!(
            Policy::new(one, MAX_THRESHOLD + 1, one),
            Err(ConfigError::ThresholdTooLarge {
                threshold: MAX_THRESHOLD + 1,
                max: MAX_THRESHOLD
            })
        );
    }
}
