//! The state machine of one key: counting failures, tripping, backing off, probing on
//! recovery, and remembering escalation.
//!
//! Everything here is plain data driven by explicit times, with no locking and no
//! clock, so the rules can be read (and tested) on their own.

use crate::escalation::{decayed_level, next_level};
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
///
/// Most keys that come from traffic fail once and are never heard of again, so that
/// case is stored inline in 16 bytes; anything more moves to the heap. Every method
/// behaves the same whichever form the state is in.
#[derive(Debug, Clone, Default)]
pub(crate) enum KeyState {
    /// Nothing yet (a state that was just created).
    #[default]
    Empty,
    /// Exactly one failure, at this time, and nothing else.
    Single(Tick),
    /// Anything more.
    Tracked(Box<Tracked>),
}

/// The full state of a key that failed more than once, tripped, or was held.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tracked {
    history: FailureHistory,
    /// End of the current or last backoff; 0 if the key never tripped.
    until: Tick,
    /// Stamp of the most recent trip.
    trip: TripStamp,
    /// Trips since the key was created.
    trips: u32,
    /// Escalation level of the most recent trip (0: the plain backoff).
    level: u32,
    /// Whether the key waits for a probe to succeed once its backoff ends.
    awaiting_probe: bool,
    /// Probes admitted and not yet finished.
    probes_in_flight: u32,
    /// Whether the key tripped and no success has cleared it since.
    unresolved: bool,
}

/// Whether a call to a key may go ahead, judged under a shared lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Calls go ahead.
    Open,
    /// In backoff until the given time.
    Closed { until: Tick },
    /// The backoff is over but the key waits for a probe: only a caller that takes a
    /// probe slot (under the exclusive lock) may go ahead. `in_flight` slots are taken.
    Probing { in_flight: u32 },
}

/// What a caller gets when it asks for a probe slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeSlot {
    /// Not probing (any more): the call goes ahead as a normal one.
    NotNeeded,
    /// The call is a probe.
    Taken,
    /// Every slot is taken; the call is refused as if the key were in backoff.
    Busy { backoff_ended: Tick },
    /// The key is in backoff after all.
    Closed { until: Tick },
}

/// What recording a failure did to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureEffect {
    /// The failure was counted; the key is not (newly) in backoff.
    Counted,
    /// The failure put the key into backoff.
    Tripped(Trip),
}

/// A new backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trip {
    /// Failures inside the window at the trip.
    pub(crate) failures: usize,
    /// End of the new backoff.
    pub(crate) until: Tick,
}

/// What a trip needs from the registry beyond the key's own state.
pub(crate) trait TripSource {
    /// A registry-wide trip stamp, taken only when a trip happens.
    fn next_stamp(&self) -> TripStamp;

    /// A random fraction in `[0, 1)`, drawn only for jittered escalation.
    fn jitter(&self) -> f64;
}

/// The moment, policy and registry a state change happens under.
#[derive(Clone, Copy)]
pub(crate) struct TripClock<'a> {
    pub(crate) now: Tick,
    pub(crate) policy: &'a Policy,
    pub(crate) source: &'a dyn TripSource,
}

impl KeyState {
    /// Returns the full state, if the key has one.
    fn tracked(&self) -> Option<&Tracked> {
        match self {
            Self::Tracked(tracked) => Some(tracked),
            Self::Empty | Self::Single(_) => None,
        }
    }

    /// Returns the full state, moving the key to it first if needed.
    fn tracked_mut(&mut self) -> &mut Tracked {
        if !matches!(self, Self::Tracked(_)) {
            let mut tracked = Box::<Tracked>::default();
            if let Self::Single(at) = *self {
                tracked.history.record(at, 1);
            }
            *self = Self::Tracked(tracked);
        }
        match self {
            Self::Tracked(tracked) => tracked,
            Self::Empty | Self::Single(_) => unreachable!("the key was just given a full state"),
        }
    }

    /// Returns whether the key is in backoff at `now`.
    pub(crate) fn in_backoff(&self, now: Tick) -> bool {
        self.tracked()
            .is_some_and(|tracked| tracked.in_backoff(now))
    }

    /// Returns the end of the backoff if the key is in backoff at `now`.
    pub(crate) fn backoff_until(&self, now: Tick) -> Option<Tick> {
        self.tracked()?.backoff_until(now)
    }

    /// Returns whether the key has ever had a deadline; a cheap pre-check that lets
    /// callers skip reading the clock for keys that never tripped.
    pub(crate) fn has_deadline(&self) -> bool {
        self.tracked().is_some_and(Tracked::has_deadline)
    }

    /// Returns the stamp of the key's most recent trip.
    pub(crate) fn trip(&self) -> TripStamp {
        self.tracked().map_or(NEVER_TRIPPED, |tracked| tracked.trip)
    }

    /// Returns how many times the key tripped since it was created.
    pub(crate) fn trips(&self) -> u32 {
        self.tracked().map_or(0, |tracked| tracked.trips)
    }

    /// Returns when the key's last backoff ended (or ends); 0 if it never tripped.
    pub(crate) fn backoff_ended(&self) -> Tick {
        self.tracked().map_or(0, |tracked| tracked.until)
    }

    /// Returns whether the key's backoff is over and it waits for a probe.
    pub(crate) fn is_probing(&self, now: Tick) -> bool {
        self.tracked()
            .is_some_and(|tracked| tracked.is_probing(now))
    }

    /// Counts the failures inside the policy's window at `now`.
    pub(crate) fn failures_within(&self, now: Tick, policy: &Policy) -> usize {
        match self {
            Self::Empty => 0,
            Self::Single(at) => usize::from(now.saturating_sub(*at) <= policy.window),
            Self::Tracked(tracked) => tracked.failures_within(now, policy),
        }
    }

    /// Returns the escalation multiplier a trip at `now` would start from, faded by
    /// the health since the last backoff: 1 without escalation.
    pub(crate) fn multiplier(&self, now: Tick, policy: &Policy) -> f64 {
        self.tracked()
            .map_or(1.0, |tracked| tracked.multiplier(now, policy))
    }

    /// Returns whether the key still holds anything a caller would see at `now`: a
    /// failure inside its window, an active backoff, or a pending probe.
    pub(crate) fn is_live(&self, now: Tick, policy: &Policy) -> bool {
        match self.tracked() {
            Some(tracked) => tracked.is_live(now, policy),
            None => self.failures_within(now, policy) > 0,
        }
    }

    /// Ranks the key for sweeping and eviction at `now`.
    pub(crate) fn standing(&self, now: Tick, policy: &Policy) -> Standing {
        match self {
            Self::Single(at) if self.is_live(now, policy) => Standing::Healthy { last_active: *at },
            Self::Empty | Self::Single(_) => Standing::Stale,
            Self::Tracked(tracked) => tracked.standing(now, policy),
        }
    }

    /// Decides, under a shared lock, whether a call may go ahead at `now`.
    pub(crate) fn gate(&self, now: Tick) -> Gate {
        self.tracked()
            .map_or(Gate::Open, |tracked| tracked.gate(now))
    }

    /// Takes one of `limit` probe slots if the key is probing at `now`.
    pub(crate) fn take_probe(&mut self, now: Tick, limit: u32) -> ProbeSlot {
        match self {
            Self::Tracked(tracked) => tracked.take_probe(now, limit),
            Self::Empty | Self::Single(_) => ProbeSlot::NotNeeded,
        }
    }

    /// Gives back a probe slot of the trip stamped `trip`; returns whether one was
    /// freed.
    pub(crate) fn release_probe(&mut self, trip: TripStamp) -> bool {
        match self {
            Self::Tracked(tracked) => tracked.release_probe(trip),
            Self::Empty | Self::Single(_) => false,
        }
    }

    /// Ends the probing of the trip stamped `trip` after a successful probe, keeping
    /// the failures; returns whether the key was probing for that trip.
    pub(crate) fn pass_probe(&mut self, trip: TripStamp) -> bool {
        match self {
            Self::Tracked(tracked) if tracked.trip == trip && tracked.awaiting_probe => {
                tracked.awaiting_probe = false;
                tracked.probes_in_flight = 0;
                true
            }
            _ => false,
        }
    }

    /// Records a failure; see [`Tracked::record_failure`]. A first failure that cannot
    /// trip the key stays inline.
    pub(crate) fn record_failure(
        &mut self,
        clock: &TripClock<'_>,
        may_trip: bool,
    ) -> FailureEffect {
        if let Self::Empty = self {
            if clock.policy.threshold > 1 {
                *self = Self::Single(clock.now);
                return FailureEffect::Counted;
            }
        }
        self.tracked_mut().record_failure(clock, may_trip)
    }

    /// Trips the key at once because its probe failed.
    pub(crate) fn fail_probe(&mut self, clock: &TripClock<'_>) -> Trip {
        self.tracked_mut().fail_probe(clock)
    }

    /// Holds the key in backoff until at least `until`; see [`Tracked::hold_until`].
    pub(crate) fn hold_until(&mut self, clock: &TripClock<'_>, until: Tick) -> bool {
        if until <= clock.now {
            return false;
        }
        self.tracked_mut().hold_until(clock, until)
    }

    /// Puts the key into backoff until exactly `until`.
    pub(crate) fn force_until(&mut self, clock: &TripClock<'_>, until: Tick) -> Tick {
        self.tracked_mut().force_until(clock, until)
    }

    /// Applies a success at `now`; see [`Tracked::succeed`].
    pub(crate) fn succeed(&mut self, now: Tick, policy: &Policy) -> Success {
        match self {
            Self::Tracked(tracked) => tracked.succeed(now, policy),
            Self::Empty | Self::Single(_) => {
                *self = Self::Empty;
                Success {
                    recovered: false,
                    remembers: false,
                }
            }
        }
    }
}

impl Tracked {
    /// Returns whether the key is in backoff at `now`.
    fn in_backoff(&self, now: Tick) -> bool {
        now < self.until
    }

    /// Returns the end of the backoff if the key is in backoff at `now`.
    fn backoff_until(&self, now: Tick) -> Option<Tick> {
        self.in_backoff(now).then_some(self.until)
    }

    /// Returns whether the key has ever had a deadline; a cheap pre-check that lets
    /// callers skip reading the clock for keys that never tripped.
    fn has_deadline(&self) -> bool {
        self.until != 0
    }

    /// Returns whether the key's backoff is over and it waits for a probe.
    fn is_probing(&self, now: Tick) -> bool {
        self.awaiting_probe && !self.in_backoff(now)
    }

    /// Counts the failures inside the policy's window at `now`.
    fn failures_within(&self, now: Tick, policy: &Policy) -> usize {
        self.history.count_within(now, policy.window)
    }

    /// Returns the escalation multiplier a trip at `now` would start from, faded by
    /// the health since the last backoff: 1 without escalation.
    fn multiplier(&self, now: Tick, policy: &Policy) -> f64 {
        match policy.escalation {
            Some(escalation) if self.trips > 0 => {
                let level = match self.in_backoff(now) {
                    true => self.level,
                    false => decayed_level(self.level, self.until, now, policy.backoff),
                };
                escalation.multiplier(policy.backoff, level)
            }
            _ => 1.0,
        }
    }

    /// Returns whether the key still holds anything a caller would see at `now`: a
    /// failure inside its window, an active backoff, or a pending probe.
    fn is_live(&self, now: Tick, policy: &Policy) -> bool {
        self.in_backoff(now) || self.awaiting_probe || self.failures_within(now, policy) > 0
    }

    /// Ranks the key for sweeping and eviction at `now`.
    fn standing(&self, now: Tick, policy: &Policy) -> Standing {
        if let Some(until) = self.backoff_until(now) {
            return Standing::BackingOff { until };
        }

        let remembers = self.probes_in_flight > 0 || self.multiplier(now, policy) > 1.0;
        if self.is_live(now, policy) || remembers {
            let last_active = self.history.newest().unwrap_or(0).max(self.until);
            return Standing::Healthy { last_active };
        }
        Standing::Stale
    }

    /// Decides, under a shared lock, whether a call may go ahead at `now`.
    fn gate(&self, now: Tick) -> Gate {
        match self.backoff_until(now) {
            Some(until) => Gate::Closed { until },
            None if self.awaiting_probe => Gate::Probing {
                in_flight: self.probes_in_flight,
            },
            None => Gate::Open,
        }
    }

    /// Takes one of `limit` probe slots if the key is probing at `now`.
    fn take_probe(&mut self, now: Tick, limit: u32) -> ProbeSlot {
        if let Some(until) = self.backoff_until(now) {
            return ProbeSlot::Closed { until };
        }
        if !self.awaiting_probe {
            return ProbeSlot::NotNeeded;
        }
        if self.probes_in_flight >= limit.max(1) {
            return ProbeSlot::Busy {
                backoff_ended: self.until,
            };
        }

        self.probes_in_flight += 1;
        ProbeSlot::Taken
    }

    /// Gives back a probe slot of the trip stamped `trip` without a verdict (the probe
    /// was dropped or its outcome said nothing). Returns whether a slot was freed.
    fn release_probe(&mut self, trip: TripStamp) -> bool {
        if self.trip != trip || self.probes_in_flight == 0 {
            return false;
        }
        self.probes_in_flight -= 1;
        true
    }

    /// Records a failure at `now`.
    ///
    /// The failure always joins the history. It can trip the key only when the key is
    /// not already in backoff and `may_trip` is set. An existing deadline is never
    /// moved earlier.
    fn record_failure(&mut self, clock: &TripClock<'_>, may_trip: bool) -> FailureEffect {
        let (now, policy) = (clock.now, clock.policy);
        self.history.record(now, policy.threshold as usize);

        if !may_trip || self.in_backoff(now) {
            return FailureEffect::Counted;
        }

        let failures = self.failures_within(now, policy);
        if failures < policy.threshold as usize {
            return FailureEffect::Counted;
        }
        FailureEffect::Tripped(self.trip_now(clock, failures))
    }

    /// Trips the key at once, whatever its failures: a probe failed.
    fn fail_probe(&mut self, clock: &TripClock<'_>) -> Trip {
        self.history
            .record(clock.now, clock.policy.threshold as usize);
        let failures = self.failures_within(clock.now, clock.policy);
        self.trip_now(clock, failures)
    }

    /// Puts the key into backoff for its (possibly escalated) backoff from now.
    fn trip_now(&mut self, clock: &TripClock<'_>, failures: usize) -> Trip {
        let (now, policy) = (clock.now, clock.policy);
        let backoff = match policy.escalation {
            None => policy.backoff,
            Some(escalation) => {
                let level = match self.trips {
                    0 => 0,
                    _ => next_level(self.level, self.until, now, policy.backoff),
                };
                self.level = level.min(escalation.top_level(policy.backoff));
                let backoff = escalation.backoff(policy.backoff, self.level);
                match escalation.is_jittered() {
                    true => escalation.jittered(backoff, clock.source.jitter()),
                    false => backoff,
                }
            }
        };

        self.until = self.until.max(now.saturating_add(backoff));
        self.start_backoff(clock);
        Trip {
            failures,
            until: self.until,
        }
    }

    /// Holds the key in backoff until at least `until`, as a server asked.
    ///
    /// A deadline is never moved earlier, and one in the past (or now) changes nothing.
    /// Returns whether this put a key that was not in backoff into backoff; that is a
    /// trip.
    fn hold_until(&mut self, clock: &TripClock<'_>, until: Tick) -> bool {
        if until <= clock.now {
            return false;
        }

        let was_in_backoff = self.in_backoff(clock.now);
        self.until = self.until.max(until);
        if !was_in_backoff {
            self.start_backoff(clock);
        }
        !was_in_backoff
    }

    /// Puts the key into backoff until exactly `until`, earlier or later than any
    /// current deadline: an operator's decision. Returns the new deadline.
    fn force_until(&mut self, clock: &TripClock<'_>, until: Tick) -> Tick {
        self.until = until;
        self.start_backoff(clock);
        until
    }

    /// Stamps a backoff that was just set up, and arms the probe if the policy wants
    /// one when it ends.
    fn start_backoff(&mut self, clock: &TripClock<'_>) {
        self.trip = clock.source.next_stamp();
        self.trips = self.trips.saturating_add(1);
        self.unresolved = true;
        self.awaiting_probe = clock.policy.probes > 0;
        self.probes_in_flight = 0;
    }

    /// Applies a success at `now`: failures, backoff and probing are forgotten.
    fn succeed(&mut self, now: Tick, policy: &Policy) -> Success {
        let recovered = std::mem::take(&mut self.unresolved);
        self.history = FailureHistory::default();
        self.awaiting_probe = false;
        self.probes_in_flight = 0;
        self.until = self.until.min(now);
        Success {
            recovered,
            remembers: self.multiplier(now, policy) > 1.0,
        }
    }
}

/// What a success did to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Success {
    /// The key had tripped and is now clear: a recovery.
    pub(crate) recovered: bool,
    /// The key still has escalation to remember; without it, it can be dropped.
    pub(crate) remembers: bool,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::escalation::{Escalation, EscalationPolicy};

    const POLICY: Policy = Policy {
        window: 30,
        threshold: 2,
        backoff: 100,
        escalation: None,
        probes: 0,
    };

    /// Stamps every trip 9.
    struct Nine;

    impl TripSource for Nine {
        fn next_stamp(&self) -> TripStamp {
            9
        }

        fn jitter(&self) -> f64 {
            0.5
        }
    }

    fn clock(now: Tick, policy: &Policy) -> TripClock<'_> {
        TripClock {
            now,
            policy,
            source: &Nine,
        }
    }

    fn fail(state: &mut KeyState, now: Tick) -> FailureEffect {
        state.record_failure(&clock(now, &POLICY), true)
    }

    #[test]
    fn trips_at_the_threshold_and_stamps_the_trip() {
        let mut state = KeyState::default();
        assert_eq!(fail(&mut state, 10), FailureEffect::Counted);
        let trip = Trip {
            failures: 2,
            until: 140,
        };
        assert_eq!(fail(&mut state, 40), FailureEffect::Tripped(trip));
        assert_eq!((state.trip(), state.trips()), (9, 1));
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
        let effect = state.record_failure(&clock(1, &POLICY), false);
        assert_eq!(effect, FailureEffect::Counted);
        assert_eq!(state.failures_within(1, &POLICY), 2);
        assert!(!state.in_backoff(1));
    }

    #[test]
    fn a_hold_extends_but_never_shortens() {
        let mut state = KeyState::default();
        assert!(!state.hold_until(&clock(10, &POLICY), 10));
        assert!(!state.in_backoff(10));

        assert!(state.hold_until(&clock(10, &POLICY), 50));
        assert_eq!((state.backoff_until(10), state.trip()), (Some(50), 9));

        assert!(!state.hold_until(&clock(20, &POLICY), 30));
        assert!(!state.hold_until(&clock(20, &POLICY), 80));
        assert_eq!(state.backoff_until(20), Some(80));
    }

    #[test]
    fn huge_backoff_saturates() {
        let policy = Policy {
            backoff: u64::MAX,
            ..POLICY
        };
        let mut state = KeyState::default();
        state.record_failure(&clock(5, &policy), true);
        state.record_failure(&clock(5, &policy), true);
        assert_eq!(state.backoff_until(u64::MAX - 1), Some(u64::MAX));
    }

    #[test]
    fn consecutive_trips_escalate_and_health_fades_them() {
        let escalation = Escalation::new(2.0, Duration::from_nanos(350));
        let policy = Policy {
            threshold: 1,
            escalation: Some(EscalationPolicy::new(&escalation, 100).unwrap()),
            ..POLICY
        };
        let mut state = KeyState::default();
        let mut trip_at = |now| match state.record_failure(&clock(now, &policy), true) {
            FailureEffect::Tripped(trip) => trip.until - now,
            FailureEffect::Counted => 0,
        };

        // Each trip right after the previous backoff ends doubles it, up to the cap.
        assert_eq!(trip_at(0), 100);
        assert_eq!(trip_at(100), 200);
        assert_eq!(trip_at(300), 350);
        assert_eq!(trip_at(650), 350);
        // The level stopped at 2, where the cap is reached. 200 ticks of health (two
        // full backoffs) take it down to 0, and the trip counts one up again: level 1.
        assert_eq!(trip_at(1_200), 200);
    }

    #[test]
    fn probes_are_limited_and_freed_per_trip() {
        let policy = Policy {
            probes: 1,
            ..POLICY
        };
        let mut state = KeyState::default();
        state.record_failure(&clock(0, &policy), true);
        state.record_failure(&clock(0, &policy), true);

        assert_eq!(state.gate(50), Gate::Closed { until: 100 });
        assert_eq!(state.take_probe(50, 1), ProbeSlot::Closed { until: 100 });
        assert_eq!(state.gate(100), Gate::Probing { in_flight: 0 });
        assert_eq!(state.take_probe(100, 1), ProbeSlot::Taken);
        assert_eq!(
            state.take_probe(100, 1),
            ProbeSlot::Busy { backoff_ended: 100 }
        );

        assert!(!state.release_probe(8));
        assert!(state.release_probe(9));
        assert_eq!(state.take_probe(101, 1), ProbeSlot::Taken);

        let success = state.succeed(120, &policy);
        assert_eq!(
            success,
            Success {
                recovered: true,
                remembers: false
            }
        );
        assert_eq!(state.gate(120), Gate::Open);
        assert_eq!(state.take_probe(120, 1), ProbeSlot::NotNeeded);
    }

    #[test]
    fn a_failed_probe_trips_at_once() {
        let policy = Policy {
            probes: 1,
            threshold: 3,
            ..POLICY
        };
        let mut state = KeyState::default();
        state.hold_until(&clock(0, &policy), 100);
        assert_eq!(state.take_probe(100, 1), ProbeSlot::Taken);

        let trip = state.fail_probe(&clock(105, &policy));
        assert_eq!(
            trip,
            Trip {
                failures: 1,
                until: 205
            }
        );
        assert_eq!(state.gate(150), Gate::Closed { until: 205 });
    }

    #[test]
    fn forcing_sets_the_deadline_either_way() {
        let mut state = KeyState::default();
        assert_eq!(state.force_until(&clock(0, &POLICY), 500), 500);
        assert_eq!(state.force_until(&clock(10, &POLICY), 20), 20);
        assert_eq!(state.backoff_until(10), Some(20));
        assert_eq!(state.trips(), 2);
    }
}
