//! [`Pending`]: an admitted call whose outcome the registry still waits for.

use std::fmt;
use std::time::Duration;

use crate::classify::Outcome;
use crate::key_buf::KeyBuf;
use crate::registry::directory::{self, Listing};
use crate::registry::{BackoffRegistry, Ticket};
use crate::time::saturating_add;

/// An admitted call, held by the future that runs it until its outcome is known.
///
/// Finishing it records the outcome. Dropping it unfinished records nothing, except
/// that a probe's slot is given back, so that the next call can probe.
pub(crate) struct Pending {
    registry: Reach,
    key: KeyBuf,
    ticket: Ticket,
    finished: bool,
}

/// How a pending call reaches its registry.
enum Reach {
    /// Through a handle, which keeps the registry alive: for a call to a key the
    /// registry may have held when the call was admitted.
    Held(BackoffRegistry),
    /// Through the registry's listing: for a call to a key the registry held nothing
    /// for. Only its failure is recorded (its success has nothing to clear), so the
    /// call looks its registry up only then, and takes no handle on the way in.
    Listed(Listing),
}

impl Pending {
    /// A call admitted to `registry` with `ticket`.
    #[inline]
    pub(crate) fn new(registry: &BackoffRegistry, key: KeyBuf, ticket: Ticket) -> Self {
        let registry = match ticket.held() || ticket.is_probe() {
            true => Reach::Held(registry.clone()),
            false => Reach::Listed(registry.listing()),
        };
        Self {
            registry,
            key,
            ticket,
            finished: false,
        }
    }

    /// Returns the call's key.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Records the call's outcome (a success clears the key only if `clear_on_success`),
    /// then holds the key in backoff for as long as `hold_for` says the server asked
    /// (it is asked only when there is a registry to record in). Only the first call
    /// records anything.
    #[inline]
    pub(crate) fn finish(
        &mut self,
        outcome: Outcome,
        clear_on_success: bool,
        hold_for: impl FnOnce(&BackoffRegistry) -> Option<Duration>,
    ) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }

        // Nothing but a failure changes a key the registry did not hold: the common
        // case is settled here, and all the recording is kept out of line.
        if matches!(self.registry, Reach::Listed(_)) && outcome != Outcome::Failure {
            return;
        }
        self.record(outcome, clear_on_success, hold_for);
    }

    /// Records the outcome [`finish`](Self::finish) did not settle.
    #[inline(never)]
    fn record(
        &self,
        outcome: Outcome,
        clear_on_success: bool,
        hold_for: impl FnOnce(&BackoffRegistry) -> Option<Duration>,
    ) {
        let found;
        let registry = match &self.registry {
            Reach::Held(registry) => registry,
            // A registry that is gone has nothing left to record in.
            Reach::Listed(listing) => match directory::find(*listing) {
                Some(registry) => {
                    found = registry;
                    &found
                }
                None => return,
            },
        };

        registry.record_outcome(&self.key, self.ticket, outcome, clear_on_success);
        if let Some(wait) = hold_for(registry) {
            let until = saturating_add(registry.now_instant(), wait);
            registry.hold_until(&self.key, until);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Only a probe holds anything to give back, and a probe's registry is held.
        if self.finished || !self.ticket.is_probe() {
            return;
        }
        if let Reach::Held(registry) = &self.registry {
            registry.abandon(&self.key, self.ticket);
        }
    }
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = matches!(self.registry, Reach::Held(_));
        f.debug_struct("Pending")
            .field("key", &self.key)
            .field("ticket", &self.ticket)
            .field("holds_registry", &held)
            .finish_non_exhaustive()
    }
}
