//! Escalating backoff: each consecutive trip of a key backs off longer, and the growth
//! fades while the key stays healthy.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use crate::time::{duration_to_nanos, Tick};

/// Multiplies a key's backoff on each consecutive trip; opt-in, per registry or per
/// [`Rule`](crate::Rule).
///
/// The first trip backs off for the plain `backoff`. A key that trips again within one
/// backoff-length of its previous backoff ending backs off `factor` times longer, then
/// `factor²` times, and so on, never beyond `max_backoff`. Health makes it fade: each
/// full backoff-length that passes without a trip takes one step off the multiplier,
/// back down to 1.
///
/// With `backoff` 10 s, `factor` 2 and `max_backoff` 60 s, a host that keeps failing
/// backs off 10 s, 20 s, 40 s, 60 s, 60 s, ...
///
/// ```
/// use std::time::Duration;
/// use url_backoff_registry::{BackoffRegistry, Escalation, Jitter};
///
/// let registry = BackoffRegistry::builder()
///     .backoff(Duration::from_secs(10))
///     .escalation(Escalation::new(2.0, Duration::from_secs(60)).jitter(Jitter::Equal))
///     .build()
///     .unwrap();
/// # drop(registry);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Escalation {
    factor: f64,
    max_backoff: Duration,
    jitter: Jitter,
}

impl Escalation {
    /// Multiplies the backoff by `factor` (at least 1.0) per consecutive trip, up to
    /// `max_backoff` (at least the plain backoff). Both are checked when the policy is
    /// applied, by the builder or by `set_rule`.
    pub fn new(factor: f64, max_backoff: Duration) -> Self {
        Self {
            factor,
            max_backoff,
            jitter: Jitter::None,
        }
    }

    /// Randomises each escalated backoff (default [`Jitter::None`]).
    #[must_use]
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Returns the multiplier per consecutive trip.
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// Returns the longest backoff escalation can reach.
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// Returns how backoffs are randomised.
    pub fn jitter_kind(&self) -> Jitter {
        self.jitter
    }
}

/// How an escalated backoff `d` is randomised, so that many keys (or many registries)
/// tripped together do not all retry at the same instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly `d`.
    #[default]
    None,
    /// Uniformly between 0 and `d` (at least one nanosecond).
    Full,
    /// Half of `d` plus uniformly up to the other half.
    Equal,
}

/// Where jitter gets its randomness; inject one to make jittered backoffs exact in
/// tests.
///
/// ```
/// use url_backoff_registry::JitterSource;
///
/// /// Always draws the middle of the range.
/// struct Middle;
///
/// impl JitterSource for Middle {
///     fn fraction(&self) -> f64 {
///         0.5
///     }
/// }
/// ```
pub trait JitterSource: Send + Sync + 'static {
    /// Returns a number in `[0, 1)`; values outside are clamped.
    fn fraction(&self) -> f64;
}

/// The default [`JitterSource`]: a fast pseudo-random generator, seeded from the system
/// unless a seed is given.
pub struct SeededJitter {
    rng: Mutex<fastrand::Rng>,
}

impl SeededJitter {
    /// Creates a source seeded from the system.
    pub fn new() -> Self {
        Self::from_rng(fastrand::Rng::new())
    }

    /// Creates a source that always produces the same sequence for the same `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self::from_rng(fastrand::Rng::with_seed(seed))
    }

    fn from_rng(rng: fastrand::Rng) -> Self {
        Self {
            rng: Mutex::new(rng),
        }
    }
}

impl Default for SeededJitter {
    fn default() -> Self {
        Self::new()
    }
}

impl JitterSource for SeededJitter {
    fn fraction(&self) -> f64 {
        // The generator's state stays valid whatever a panicking holder did.
        let mut rng = self
            .rng
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        rng.f64()
    }
}

impl fmt::Debug for SeededJitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeededJitter").finish_non_exhaustive()
    }
}

/// Escalation in the registry's tick units, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EscalationPolicy {
    factor: f64,
    max_backoff: Tick,
    jitter: Jitter,
}

/// Above this level every multiplier has long passed any cap; stopping here keeps the
/// arithmetic finite.
const MAX_LEVEL: u32 = 64;

impl EscalationPolicy {
    /// Validates `escalation` against the plain `backoff` it escalates.
    pub(crate) fn new(escalation: &Escalation, backoff: Tick) -> Result<Self, crate::ConfigError> {
        if !(escalation.factor.is_finite() && escalation.factor >= 1.0) {
            return Err(crate::ConfigError::InvalidEscalationFactor {
                factor: escalation.factor,
            });
        }
        let max_backoff = duration_to_nanos(escalation.max_backoff);
        if max_backoff < backoff {
            return Err(crate::ConfigError::EscalationCapBelowBackoff);
        }

        Ok(Self {
            factor: escalation.factor,
            max_backoff,
            jitter: escalation.jitter,
        })
    }

    /// Returns `factor` to the power `level`, before the cap.
    fn growth(&self, level: u32) -> f64 {
        self.factor.powi(level.min(MAX_LEVEL) as i32)
    }

    /// Returns the backoff for a trip at `level`, before jitter: `base` times the
    /// growth, within `base` and the cap.
    pub(crate) fn backoff(&self, base: Tick, level: u32) -> Tick {
        let escalated = base as f64 * self.growth(level);
        // `as` saturates: an infinite product becomes u64::MAX, then the cap applies.
        (escalated as u64).clamp(base, self.max_backoff)
    }

    /// Returns the multiplier a trip at `level` really gets, the cap included.
    pub(crate) fn multiplier(&self, base: Tick, level: u32) -> f64 {
        self.backoff(base, level) as f64 / base.max(1) as f64
    }

    /// Returns the lowest level whose backoff reaches the cap. Levels above it would
    /// back off no longer, so a key's level stops there, and health takes it back down
    /// from there.
    pub(crate) fn top_level(&self, base: Tick) -> u32 {
        (0..MAX_LEVEL)
            .find(|&level| self.backoff(base, level) >= self.max_backoff)
            .unwrap_or(MAX_LEVEL)
    }

    /// Randomises `backoff` with `fraction` in `[0, 1)`.
    pub(crate) fn jittered(&self, backoff: Tick, fraction: f64) -> Tick {
        let fraction = fraction.clamp(0.0, 1.0);
        match self.jitter {
            Jitter::None => backoff,
            Jitter::Full => ((backoff as f64 * fraction) as u64).max(1),
            Jitter::Equal => {
                let half = backoff / 2;
                let rest = backoff - half;
                half + (rest as f64 * fraction) as u64
            }
        }
    }

    /// Returns whether backoffs at this policy are randomised.
    pub(crate) fn is_jittered(&self) -> bool {
        self.jitter != Jitter::None
    }
}

/// The escalation level a key has at `now`, given the level of its last trip and when
/// that backoff ended: one step off per full `base` of health since.
pub(crate) fn decayed_level(level: u32, backoff_ended: Tick, now: Tick, base: Tick) -> u32 {
    let healthy_for = now.saturating_sub(backoff_ended);
    let steps = healthy_for / base.max(1);
    level.saturating_sub(u32::try_from(steps).unwrap_or(u32::MAX))
}

/// The level of a new trip at `now` for a key whose last trip had `level` and whose
/// backoff ended at `backoff_ended`: one more than the decayed level, unless health has
/// taken it all the way back (then the trip starts over at level 0).
pub(crate) fn next_level(level: u32, backoff_ended: Tick, now: Tick, base: Tick) -> u32 {
    let healthy_for = now.saturating_sub(backoff_ended);
    let steps = healthy_for / base.max(1);
    if steps > u64::from(level) {
        0
    } else {
        (level - steps as u32 + 1).min(MAX_LEVEL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Tick = 1_000_000_000;

    fn policy(jitter: Jitter) -> EscalationPolicy {
        let escalation = Escalation::new(2.0, Duration::from_secs(60)).jitter(jitter);
        EscalationPolicy::new(&escalation, 10 * SECOND).unwrap()
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = policy(Jitter::None);
        let backoffs: Vec<_> = (0..6)
            .map(|level| policy.backoff(10 * SECOND, level) / SECOND)
            .collect();
        assert_eq!(backoffs, [10, 20, 40, 60, 60, 60]);
        assert_eq!(policy.backoff(10 * SECOND, u32::MAX), 60 * SECOND);
    }

    #[test]
    fn the_level_stops_where_the_cap_is_reached() {
        let policy = policy(Jitter::None);
        assert_eq!(policy.top_level(10 * SECOND), 3);
        assert_eq!(policy.multiplier(10 * SECOND, 3), 6.0);
        assert_eq!(policy.multiplier(10 * SECOND, 9), 6.0);
        assert_eq!(policy.multiplier(10 * SECOND, 1), 2.0);

        let flat = Escalation::new(1.0, Duration::from_secs(60));
        let flat = EscalationPolicy::new(&flat, 10 * SECOND).unwrap();
        assert_eq!(flat.top_level(10 * SECOND), MAX_LEVEL);
        assert_eq!(flat.multiplier(10 * SECOND, 5), 1.0);
    }

    #[test]
    fn jitter_stays_within_its_range() {
        let full = policy(Jitter::Full);
        assert_eq!(full.jittered(40 * SECOND, 0.25), 10 * SECOND);
        assert_eq!(full.jittered(40 * SECOND, 0.0), 1);
        let equal = policy(Jitter::Equal);
        assert_eq!(equal.jittered(40 * SECOND, 0.0), 20 * SECOND);
        assert_eq!(equal.jittered(40 * SECOND, 0.5), 30 * SECOND);
        assert_eq!(equal.jittered(40 * SECOND, 7.0), 40 * SECOND);
        assert_eq!(policy(Jitter::None).jittered(40 * SECOND, 0.3), 40 * SECOND);
    }

    #[test]
    fn levels_grow_on_consecutive_trips_and_fade_with_health() {
        let base = 10 * SECOND;
        assert_eq!(next_level(0, 100 * SECOND, 100 * SECOND, base), 1);
        assert_eq!(next_level(2, 100 * SECOND, 105 * SECOND, base), 3);
        assert_eq!(next_level(2, 100 * SECOND, 110 * SECOND, base), 2);
        assert_eq!(next_level(2, 100 * SECOND, 130 * SECOND, base), 0);
        assert_eq!(next_level(2, 100 * SECOND, 129 * SECOND, base), 1);
        assert_eq!(decayed_level(3, 100 * SECOND, 125 * SECOND, base), 1);
        assert_eq!(decayed_level(3, 100 * SECOND, u64::MAX, base), 0);
        assert_eq!(next_level(MAX_LEVEL, 0, 0, base), MAX_LEVEL);
    }

    #[test]
    fn invalid_escalations_are_config_errors() {
        let check = |factor, max_secs| {
            let escalation = Escalation::new(factor, Duration::from_secs(max_secs));
            EscalationPolicy::new(&escalation, 10 * SECOND).map(|_| ())
        };
        assert_eq!(
            check(0.5, 60),
            Err(crate::ConfigError::InvalidEscalationFactor { factor: 0.5 })
        );
        assert!(check(f64::NAN, 60).is_err());
        assert!(check(f64::INFINITY, 60).is_err());
        assert_eq!(
            check(2.0, 5),
            Err(crate::ConfigError::EscalationCapBelowBackoff)
        );
        assert_eq!(check(1.0, 10), Ok(()));
    }

    #[test]
    fn seeded_jitter_repeats_and_stays_in_range() {
        let first = SeededJitter::with_seed(7);
        let second = SeededJitter::with_seed(7);
        for _ in 0..100 {
            let fraction = first.fraction();
            assert_eq!(fraction, second.fraction());
            assert!((0.0..1.0).contains(&fraction));
        }
    }
}
