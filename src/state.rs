//! The state machine of one key: counting failures, tripping, and backing off.
//!
//! Everything here is plain data driven by explicit times, with no locking and no
//! clock, so the rules can be read (and tested) on their own.

use crate::history::FailureHistory;
use crate::rule::Policy;
use crate::store::Standing;
use crate::time::Tick;

/// Identifies one trip of one key.
///
/// Stamps come from a registry-wide counter, so no two trips (of any keys, even of a
/// key that was removed and created again) share one. `NEVER_TRIPPED` marks a key that
/// has not tripped since it was created.
pub(crate) type TripStamp = u64;

/// The stamp of a key that has not tripped since it was created.
pub(crate) const NEVER_TRIPPED: TripStamp = 0;

/// Everything the registry remembers about one key.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyState {
    history: FailureHistory,
    /// End of the current or last backoff; 0 if the key never tripped.
    until: Tick,
    /// Stamp of the most recent trip.
    trip: TripStamp,
}

/// What recording a failure did to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureEffect {
    /// The failure was counted; the key is not (newly) in backoff.
    Counted,
    /// The failure reached the threshold and put the key into backoff.
    Tripped {
        /// Failures inside the window, this one included.
        failures: usize,
        /// End of the new backoff.
        until: Tick,
    },
}

impl KeyState {
    /// Returns whether the key is in backoff at `now`.
    pub(crate) fn in_backoff(&self, now: Tick) -> bool {
        now < self.until
    }

    /// Returns the end of the backoff if the key is in backoff at `now`.
    pub(crate) fn backoff_until(&self, now: Tick) -> Option<Tick> {
        self.in_backoff(now).then_some(self.until)
    }

    /// Returns whether the key has ever had a deadline; a cheap pre-check that lets
    /// callers skip reading the clock for keys that never tripped.
    pub(crate) fn has_deadline(&self) -> bool {
        self.until != 0
    }

    /// Returns the stamp of the key's most recent trip.
    pub(crate) fn trip(&self) -> TripStamp {
        self.trip
    }

    /// Counts the failures inside the policy's window at `now`.
    pub(crate) fn failures_within(&self, now: Tick, policy: &Policy) -> usize {
        self.history.count_within(now, policy.window)
    }

    /// Returns whether the key still holds anything worth keeping at `now`: a failure
    /// inside its window or an active backoff.
    pub(crate) fn is_live(&self, now: Tick, policy: &Policy) -> bool {
        self.in_backoff(now) || self.failures_within(now, policy) > 0
    }

    /// Ranks the key for sweeping and eviction at `now`.
    pub(crate) fn standing(&self, now: Tick, policy: &Policy) -> Standing {
        if let Some(until) = self.backoff_until(now) {
            return Standing::BackingOff { until };
        }
        match self.history.newest() {
            Some(last_active) if self.failures_within(now, policy) > 0 => {
                Standing::Healthy { last_active }
            }
            _ => Standing::Stale,
        }
    }

    /// Records a failure at `now`.
    ///
    /// The failure always joins the history. It can trip the key only when the key is
    /// not already in backoff and `may_trip` is set; a trip takes its stamp from
    /// `next_stamp`. An existing deadline is never moved earlier.
    pub(crate) fn record_failure(
        &mut self,
        now: Tick,
        policy: &Policy,
        may_trip: bool,
        next_stamp: impl FnOnce() -> TripStamp,
    ) -> FailureEffect {
        self.history.record(now, policy.threshold as usize);

        if !may_trip || self.in_backoff(now) {
            return FailureEffect::Counted;
        }

        let failures = self.failures_within(now, policy);
        if failures < policy.threshold as usize {
            return FailureEffect::Counted;
        }

        self.until = self.until.max(now.saturating_add(policy.backoff));
        self.trip = next_stamp();
        FailureEffect::Tripped {
            failures,
            until: self.until,
        }
    }
}

impl KeyState {
    /// Holds the key in backoff until at least `until`, as a server asked.
    ///
    /// A deadline is never moved earlier, and one in the past (or now) changes nothing.
    /// Returns whether this put a key that was not in backoff into backoff; that is a
    /// trip, stamped from `next_stamp`.
    pub(crate) fn hold_until(
        &mut self,
        now: Tick,
        until: Tick,
        next_stamp: impl FnOnce() -> TripStamp,
    ) -> bool {
        if until <= now {
            return false;
        }

        let was_in_backoff = self.in_backoff(now);
        self.until = self.until.max(until);
        if !was_in_backoff {
            self.trip = next_stamp();
        }
        !was_in_backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        window: 30,
        threshold: 2,
        backoff: 100,
    };

    fn fail(state: &mut KeyState, now: Tick) -> FailureEffect {
        state.record_failure(now, &POLICY, true, || 9)
    }

    #[test]
    fn trips_at_the_threshold_and_stamps_the_trip() {
        let mut state = KeyState::default();
        assert_eq!(fail(&mut state, 10), FailureEffect::Counted);
        assert_eq!(
            fail(&mut state, 40),
            FailureEffect::Tripped {
                failures: 2,
                until: 140
            }
        );
        assert_eq!(state.trip(), 9);
        assert_eq!(state.backoff_until(139), Some(140));
        assert_eq!(state.backoff_until(140), None);
    }

    #[test]
    fn failures_in_backoff_never_move_the_deadline() {
        let mut state = KeyState::default();
        fail(&mut state, 0);
        fail(&mut state, 0);
        assert_eq!(fail(&mut state, 50), FailureEffect::Counted);
        assert_eq!(state.backoff_until(50), Some(100));
    }

    #[test]
    fn a_failure_that_may_not_trip_is_only_counted() {
        let mut state = KeyState::default();
        fail(&mut state, 0);
        let effect = state.record_failure(1, &POLICY, false, || 9);
        assert_eq!(effect, FailureEffect::Counted);
        assert_eq!(state.failures_within(1, &POLICY), 2);
        assert!(!state.in_backoff(1));
    }

    #[test]
    fn a_hold_extends_but_never_shortens() {
        let mut state = KeyState::default();
        assert!(!state.hold_until(10, 10, || 1));
        assert!(!state.in_backoff(10));

        assert!(state.hold_until(10, 50, || 1));
        assert_eq!((state.backoff_until(10), state.trip()), (Some(50), 1));

        assert!(!state.hold_until(20, 30, || 2));
        assert!(!state.hold_until(20, 80, || 2));
        assert_eq!((state.backoff_until(20), state.trip()), (Some(80), 1));
    }

    #[test]
    fn huge_backoff_saturates() {
        let policy = Policy {
            backoff: u64::MAX,
            ..POLICY
        };
        let mut state = KeyState::default();
        state.record_failure(5, &policy, true, || 1);
        state.record_failure(5, &policy, true, || 1);
        assert_eq!(state.backoff_until(u64::MAX - 1), Some(u64::MAX));
    }
}
