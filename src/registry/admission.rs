//! Admitting calls: the per-request check, and probe slots when a backoff ends.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::BackoffRegistry;
use crate::error::BackoffError;
use crate::event::BackoffEvent;
use crate::filter::KeyHash;
use crate::hashing::Lookup;
use crate::state::{Gate, KeyState, ProbeSlot, TripStamp};
use crate::time::Tick;

/// Whether the caller enforces a refusal or only reports it (shadow mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A refused call does not run.
    Enforce,
    /// A refused call runs anyway, untracked; only the event says it was refused.
    Shadow,
}

/// Proof that a call was admitted, carrying what the key looked like at that moment
/// so that a late outcome can be judged against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    trip: TripStamp,
    probe: bool,
    /// Whether the registry may have held the key when the call was admitted; if not,
    /// the call's success has nothing to clear.
    held: bool,
    /// The key's hash, so that the outcome need not hash it again.
    hash: KeyHash,
}

impl Ticket {
    #[inline]
    fn normal(trip: TripStamp, hash: KeyHash, held: bool) -> Self {
        Self {
            trip,
            probe: false,
            held,
            hash,
        }
    }

    /// Returns whether `state` has not tripped since this ticket was issued.
    ///
    /// Trip stamps only grow, so a trip after admission carries a larger stamp; a key
    /// that was removed and created again starts from
    /// [`NEVER_TRIPPED`](crate::state::NEVER_TRIPPED) and still counts as current.
    pub(super) fn still_current(&self, state: &KeyState) -> bool {
        state.trip() <= self.trip
    }

    /// Returns whether the call is a probe.
    #[inline]
    pub(crate) fn is_probe(&self) -> bool {
        self.probe
    }

    /// Returns whether the registry may have held the key when the call was admitted.
    /// `false` is certain.
    #[inline]
    pub(crate) fn held(&self) -> bool {
        self.held
    }

    /// Returns the stamp of the trip the call was admitted after.
    pub(super) fn trip(&self) -> TripStamp {
        self.trip
    }

    /// Returns the key's hash.
    #[inline]
    pub(super) fn hash(&self) -> KeyHash {
        self.hash
    }
}

/// Why [`lookup`](BackoffRegistry::lookup) would refuse a call, before any
/// [`BackoffError`] is built.
#[derive(Debug, Clone, Copy)]
pub(super) enum Refusal {
    /// In backoff until `until`; the question was asked at `now`.
    Closed { until: Tick, now: Instant },
    /// The backoff ended at `backoff_ended`, and every probe slot is taken.
    Probing { backoff_ended: Tick },
}

impl BackoffRegistry {
    /// Admits a call to `key`, or refuses it while the key is in backoff (or waits for
    /// a probe whose slots are taken), reporting the refusal.
    ///
    /// This is the per-request check. A key without a deadline cannot refuse a call,
    /// and almost every key has none: one read of the `gated` filter settles it, with
    /// no lock and no write, inlined into the caller. Only a key that has tripped is
    /// looked up in the map, and only one whose backoff just ended takes the exclusive
    /// lock, to claim a probe slot.
    #[inline]
    pub(crate) fn admit(&self, lookup: Lookup<'_>, mode: Mode) -> Result<Ticket, BackoffError> {
        match self.ungated_ticket(lookup) {
            Ok(ticket) => Ok(ticket),
            Err((hash, newest)) => self.admit_gated(lookup, hash, newest, mode),
        }
    }

    /// [`admit`](Self::admit) for a key that certainly has no deadline; `None` if it
    /// may have one, and must be admitted by `admit`.
    #[inline]
    pub(crate) fn admit_ungated(&self, lookup: Lookup<'_>) -> Option<Ticket> {
        self.ungated_ticket(lookup).ok()
    }

    /// The ticket of a call to a key that certainly has no deadline, or, for a key that
    /// may have one, its hash and the newest trip stamp read before the filter.
    #[inline]
    fn ungated_ticket(&self, lookup: Lookup<'_>) -> Result<Ticket, (KeyHash, TripStamp)> {
        // The newest stamp is read before the filter; a trip counts its key in the
        // filter before it takes a stamp. So if the filter shows no deadline, any trip
        // the call did not see has a larger stamp than its ticket, and marks the call's
        // outcome as late.
        let newest = self.shared.last_trip.load(Ordering::Acquire);
        let hash = KeyHash::from_hash(lookup.hash());
        let store = &self.shared.store;
        match store.may_be_gated(hash) {
            false => Ok(Ticket::normal(newest, hash, store.may_hold(hash))),
            true => Err((hash, newest)),
        }
    }

    /// [`admit`](Self::admit) for a key that may have a deadline.
    fn admit_gated(
        &self,
        lookup: Lookup<'_>,
        hash: KeyHash,
        newest: TripStamp,
        mode: Mode,
    ) -> Result<Ticket, BackoffError> {
        let key = lookup.text();
        let seen = self.shared.store.read_by(&lookup, |state| {
            // Reading the clock is needed only for a key that has tripped.
            let now = state.has_deadline().then(|| self.now_both());
            let gate = now.map_or(Gate::Open, |now| state.gate(now.1));
            (gate, state.trip(), now)
        });

        let Some((gate, trip, now)) = seen else {
            return Ok(Ticket::normal(newest, hash, false));
        };
        match (gate, now) {
            (Gate::Closed { until }, Some(now)) => {
                Err(self.refuse(self.closed(key, until, now.0), mode))
            }
            (Gate::Probing { .. }, Some(now)) => self.admit_probe(key, hash, now, mode),
            _ => Ok(Ticket::normal(trip, hash, true)),
        }
    }

    /// [`admit`](Self::admit) as a plain question: no slot is taken, nothing reported,
    /// nothing allocated.
    pub(super) fn lookup(&self, key: &str) -> Result<(), Refusal> {
        let lookup = Lookup::new(key);
        if !self
            .shared
            .store
            .may_be_gated(KeyHash::from_hash(lookup.hash()))
        {
            return Ok(());
        }
        let seen = self.shared.store.read_by(&lookup, |state| {
            let now = state.has_deadline().then(|| self.now_both());
            let gate = now.map_or(Gate::Open, |now| state.gate(now.1));
            (gate, now, state.backoff_ended())
        });

        match seen {
            Some((Gate::Closed { until }, Some(now), _)) => {
                Err(Refusal::Closed { until, now: now.0 })
            }
            Some((Gate::Probing { in_flight }, _, backoff_ended)) => {
                match in_flight < self.policy_for(key).probes.max(1) {
                    true => Ok(()),
                    false => Err(Refusal::Probing { backoff_ended }),
                }
            }
            _ => Ok(()),
        }
    }

    /// Describes `refusal` of a call to `key` as a [`BackoffError`].
    pub(super) fn refusal_error(&self, key: &str, refusal: Refusal) -> BackoffError {
        match refusal {
            Refusal::Closed { until, now } => self.closed(key, until, now),
            Refusal::Probing { backoff_ended } => {
                BackoffError::probing(key, self.instant(backoff_ended))
            }
        }
    }

    /// Claims a probe slot for a call to `key`, whose backoff is over.
    fn admit_probe(
        &self,
        key: &str,
        hash: KeyHash,
        now: (Instant, Tick),
        mode: Mode,
    ) -> Result<Ticket, BackoffError> {
        let limit = self.policy_for(key).probes;
        let claimed = self.update_existing(key, now.1, |state, _| {
            (state.take_probe(now.1, limit), state.trip())
        });

        match claimed {
            // Forgotten meanwhile: nothing to probe any more.
            None => Ok(Ticket::normal(
                self.shared.last_trip.load(Ordering::Acquire),
                hash,
                false,
            )),
            Some((ProbeSlot::NotNeeded, trip)) => Ok(Ticket::normal(trip, hash, true)),
            Some((ProbeSlot::Taken, trip)) => {
                self.notify(BackoffEvent::ProbeAdmitted { key: key.into() });
                Ok(Ticket {
                    trip,
                    probe: true,
                    held: true,
                    hash,
                })
            }
            Some((ProbeSlot::Busy { backoff_ended }, _)) => {
                let refusal = BackoffError::probing(key, self.instant(backoff_ended));
                Err(self.refuse(refusal, mode))
            }
            Some((ProbeSlot::Closed { until }, _)) => {
                Err(self.refuse(self.closed(key, until, now.0), mode))
            }
        }
    }

    /// The refusal of a call to `key`, in backoff until `until`.
    fn closed(&self, key: &str, until: Tick, now: Instant) -> BackoffError {
        BackoffError::new(key, self.instant(until), now)
    }

    /// Reports `refusal` and hands it back.
    fn refuse(&self, refusal: BackoffError, mode: Mode) -> BackoffError {
        self.notify(BackoffEvent::ShortCircuited {
            key: refusal.shared_key(),
            until: refusal.until(),
            retry_after: refusal.retry_after(),
            probing: refusal.is_probing(),
            shadow: mode == Mode::Shadow,
        });
        refusal
    }
}
