//! Recording what happened to admitted calls: failures, successes, probes, and the
//! server's hints.

use std::time::Instant;

use super::{BackoffRegistry, Ticket};
use crate::classify::Outcome;
use crate::event::{BackoffEvent, ProbeResult, TripCause};
use crate::notify::wall_time;
use crate::state::FailureEffect;
use crate::store::Standing;

impl BackoffRegistry {
    /// Applies the outcome of a call admitted with `ticket`; a success clears the key
    /// only if `clear_on_success`.
    ///
    /// A call whose key tripped after it was admitted is a *late* outcome: its success
    /// does not clear the key, and its failure is remembered but cannot trip it. A
    /// probe's failure trips its key at once; its success ends the probing (and clears
    /// the key if successes clear); a probe whose outcome is neutral gives its slot
    /// back.
    #[inline]
    pub(crate) fn record_outcome(
        &self,
        key: &str,
        ticket: Ticket,
        outcome: Outcome,
        clear_on_success: bool,
    ) {
        match (outcome, ticket.is_probe()) {
            (Outcome::Success, _) if clear_on_success => self.succeed(key, ticket),
            (Outcome::Success, true) => self.pass_probe(key, ticket),
            (Outcome::Success | Outcome::Neutral, false) => {}
            (Outcome::Failure, false) => self.record_failure_at(key, Some(ticket)),
            (Outcome::Failure, true) => self.fail_probe(key, ticket),
            (Outcome::Neutral, true) => self.abandon(key, ticket),
        }
    }

    /// Ends the probing of `key` after its probe succeeded, without clearing its
    /// failures: the caller said successes should not clear keys, but the host answered,
    /// so calls go ahead again.
    fn pass_probe(&self, key: &str, ticket: Ticket) {
        let now = self.now();
        let passed = self.update_existing(key, now, |state, _| state.pass_probe(ticket.trip()));
        if passed == Some(true) {
            let result = ProbeResult::Succeeded;
            self.notify(BackoffEvent::ProbeFinished {
                key: key.into(),
                result,
            });
        }
    }

    /// Gives back the slot of a probe that ended without a verdict (it was dropped, or
    /// its outcome said nothing); other calls need nothing.
    pub(crate) fn abandon(&self, key: &str, ticket: Ticket) {
        if !ticket.is_probe() {
            return;
        }

        let now = self.now();
        let freed = self.update_existing(key, now, |state, _| state.release_probe(ticket.trip()));
        if freed == Some(true) {
            let result = ProbeResult::Abandoned;
            self.notify(BackoffEvent::ProbeFinished {
                key: key.into(),
                result,
            });
        }
    }

    /// Records a failure of `key`; `ticket` is that of the call that failed, if any.
    pub(super) fn record_failure_at(&self, key: &str, ticket: Option<Ticket>) {
        let now = self.now_both();
        let policy = self.policy_for(key);

        let effect = self.update(key, now.1, |state, stamps| {
            let may_trip = ticket.is_none_or(|ticket| ticket.still_current(state));
            state.record_failure(&Self::trip_clock(now.1, &policy, stamps), may_trip)
        });

        if let FailureEffect::Tripped(trip) = effect {
            self.notify(self.trip_event(key, trip, now, TripCause::Threshold));
        }
    }

    /// Clears `key` after a success, unless it tripped since `ticket` was issued, or
    /// the registry held nothing for it when the call was admitted: then every failure
    /// the key has came after the call was sent, and the success is older news.
    /// Takes only a shared lock when there is nothing to clear.
    ///
    /// Known limit: the ticket only says whether the key had a record at admission. A
    /// key that had one, was forgotten (cleared, released, swept or evicted) and got
    /// new failures while the call ran is still cleared by the call's success, though
    /// those failures came after the request was sent. Telling the two records apart
    /// would need the key's generation at admission, which the common case does not
    /// read.
    #[inline]
    fn succeed(&self, key: &str, ticket: Ticket) {
        // The common case, a success on a key the registry did not hold at admission
        // and does not hold now, is settled without reading shared memory or by one
        // read of the presence filter.
        if !ticket.held() || !self.shared.store.may_hold(ticket.hash()) {
            return;
        }
        let current = self
            .shared
            .store
            .read(key, |state| ticket.still_current(state));
        if current == Some(true) {
            self.apply_success(key, Some(ticket));
        }
    }

    /// Applies a success to `key`: with a ticket only if the key has not tripped
    /// since; without one (the caller reports a success of its own), always.
    pub(super) fn apply_success(&self, key: &str, ticket: Option<Ticket>) {
        let now = self.now();
        let policy = self.policy_for(key);
        let success = self.update_existing(key, now, |state, _| {
            ticket
                .is_none_or(|ticket| ticket.still_current(state))
                .then(|| state.succeed(now, &policy))
        });
        let Some(Some(success)) = success else {
            return;
        };

        if !success.remembers {
            self.remove_where(key, now, |state| {
                state.standing(now, &policy) == Standing::Stale
            });
        }
        if ticket.is_some_and(|ticket| ticket.is_probe()) {
            let result = ProbeResult::Succeeded;
            self.notify(BackoffEvent::ProbeFinished {
                key: key.into(),
                result,
            });
        }
        if success.recovered {
            self.notify(BackoffEvent::Recovered { key: key.into() });
        }
    }

    /// Trips `key` again at once because its probe failed. A probe whose key has
    /// tripped or been cleared since counts as an ordinary late failure.
    fn fail_probe(&self, key: &str, ticket: Ticket) {
        let now = self.now_both();
        let policy = self.policy_for(key);
        let tripped = self.update_existing(key, now.1, |state, stamps| {
            let clock = Self::trip_clock(now.1, &policy, stamps);
            (state.trip() == ticket.trip()).then(|| state.fail_probe(&clock))
        });

        let Some(Some(trip)) = tripped else {
            return self.record_failure_at(key, Some(ticket));
        };
        let result = ProbeResult::Failed;
        self.notify(BackoffEvent::ProbeFinished {
            key: key.into(),
            result,
        });
        self.notify(self.trip_event(key, trip, now, TripCause::ProbeFailed));
    }

    /// Holds `key` in backoff until at least `until`, because the server asked for it
    /// (a `Retry-After` header, for example). A key not in backoff trips at once, below
    /// its threshold; an existing deadline is only ever extended; a time not after
    /// now changes nothing.
    pub(crate) fn hold_until(&self, key: &str, until: Instant) {
        let now = self.now_both();
        let until = self.shared.timeline.tick(until);
        if until <= now.1 {
            return;
        }

        let policy = self.policy_for(key);
        let (tripped, before, failures) = self.update(key, now.1, |state, stamps| {
            let before = state.backoff_until(now.1);
            let tripped = state.hold_until(&Self::trip_clock(now.1, &policy, stamps), until);
            (tripped, before, state.failures_within(now.1, &policy))
        });

        if tripped {
            let trip = crate::state::Trip { failures, until };
            self.notify(self.trip_event(key, trip, now, TripCause::ServerHint));
        } else if before.is_some_and(|before| before < until) {
            let until = self.instant(until);
            let backoff = until.saturating_duration_since(now.0);
            self.notify(BackoffEvent::Extended {
                key: key.into(),
                until,
                until_wall: wall_time(self.system_now(), backoff),
                backoff,
                cause: TripCause::ServerHint,
            });
        }
    }
}
