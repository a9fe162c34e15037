//! Backoff settings: the public [`Rule`] overrides and the resolved [`Policy`] the
//! registry works with.

use std::time::Duration;

use crate::error::ConfigError;
use crate::escalation::{Escalation, EscalationPolicy};
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

/// Per-key overrides of the registry's window, threshold, backoff, escalation and
/// probes.
///
/// Fields left unset follow the registry's defaults. Apply a rule with
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
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rule {
    window: Option<Duration>,
    threshold: Option<u32>,
    backoff: Option<Duration>,
    /// `Some(None)` turns escalation off for the key.
    escalation: Option<Option<Escalation>>,
    probes: Option<u32>,
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

    /// Gives the key its own [`Escalation`] policy.
    #[must_use]
    pub fn escalation(mut self, escalation: Escalation) -> Self {
        self.escalation = Some(Some(escalation));
        self
    }

    /// Turns escalation off for the key, whatever the registry's default.
    #[must_use]
    pub fn without_escalation(mut self) -> Self {
        self.escalation = Some(None);
        self
    }

    /// Sets how many probes the key admits when its backoff ends; 0 turns probing off
    /// for the key. See
    /// [`BackoffRegistryBuilder::probes`](crate::BackoffRegistryBuilder::probes).
    #[must_use]
    pub fn probes(mut self, probes: u32) -> Self {
        self.probes = Some(probes);
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
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Policy {
    pub(crate) window: Tick,
    pub(crate) threshold: u32,
    pub(crate) backoff: Tick,
    pub(crate) escalation: Option<EscalationPolicy>,
    /// Probes admitted when a backoff ends; 0 when probing is off.
    pub(crate) probes: u32,
}

impl Policy {
    /// Validates `settings` and converts them to ticks.
    pub(crate) fn new(settings: &Settings) -> Result<Self, ConfigError> {
        if settings.window.is_zero() {
            return Err(ConfigError::ZeroWindow);
        }
        if settings.backoff.is_zero() {
            return Err(ConfigError::ZeroBackoff);
        }
        if settings.threshold == 0 {
            return Err(ConfigError::ZeroThreshold);
        }
        if settings.threshold > MAX_THRESHOLD {
            return Err(ConfigError::ThresholdTooLarge {
                threshold: settings.threshold,
                max: MAX_THRESHOLD,
            });
        }

        let backoff = duration_to_nanos(settings.backoff);
        let escalation = settings
            .escalation
            .map(|escalation| EscalationPolicy::new(&escalation, backoff))
            .transpose()?;
        Ok(Self {
            window: duration_to_nanos(settings.window),
            threshold: settings.threshold,
            backoff,
            escalation,
            probes: settings.probes,
        })
    }

    /// Resolves `rule` against `defaults`: every field the rule leaves unset comes from
    /// the defaults.
    pub(crate) fn with_rule(defaults: &Settings, rule: &Rule) -> Result<Self, ConfigError> {
        Self::new(&Settings {
            window: rule.window.unwrap_or(defaults.window),
            threshold: rule.threshold.unwrap_or(defaults.threshold),
            backoff: rule.backoff.unwrap_or(defaults.backoff),
            escalation: rule.escalation.unwrap_or(defaults.escalation),
            probes: rule.probes.unwrap_or(defaults.probes),
        })
    }
}

/// The registry-wide settings as the user gave them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Settings {
    pub(crate) window: Duration,
    pub(crate) threshold: u32,
    pub(crate) backoff: Duration,
    pub(crate) escalation: Option<Escalation>,
    pub(crate) probes: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            threshold: DEFAULT_THRESHOLD,
            backoff: DEFAULT_BACKOFF,
            escalation: None,
            probes: 0,
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
        let policy = |window, threshold, backoff| {
            Policy::new(&Settings {
                window,
                threshold,
                backoff,
                ..Settings::default()
            })
        };
        assert_eq!(policy(zero, 0, zero), Err(ConfigError::ZeroWindow));
        assert_eq!(policy(one, 0, zero), Err(ConfigError::ZeroBackoff));
        assert_eq!(policy(one, 0, one), Err(ConfigError::ZeroThreshold));
        assert_eq!(
            policy(one, MAX_THRESHOLD + 1, one),
            Err(ConfigError::ThresholdTooLarge {
                threshold: MAX_THRESHOLD + 1,
                max: MAX_THRESHOLD
            })
        );
    }

    #[test]
    fn a_rule_can_turn_escalation_off_or_on() {
        let escalation = Escalation::new(2.0, Duration::from_secs(600));
        let defaults = Settings {
            escalation: Some(escalation),
            probes: 1,
            ..Settings::default()
        };
        let off = Policy::with_rule(&defaults, &Rule::default().without_escalation()).unwrap();
        assert_eq!((off.escalation, off.probes), (None, 1));

        let inherited = Policy::with_rule(&defaults, &Rule::default().probes(0)).unwrap();
        assert!(inherited.escalation.is_some());
        assert_eq!(inherited.probes, 0);

        let too_short = Escalation::new(2.0, Duration::from_secs(1));
        let rule = Rule::default().escalation(too_short);
        assert_eq!(
            Policy::with_rule(&Settings::default(), &rule),
            Err(ConfigError::EscalationCapBelowBackoff)
        );
    }
}
