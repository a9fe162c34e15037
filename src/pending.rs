//! [`Pending`]: an admitted call whose outcome the registry still waits for.

use std::fmt;
use std::time::Duration;

use crate::classify::Outcome;
use crate::key_buf::KeyBuf;
use crate::registry::{BackoffRegistry, Ticket};
use crate::time::saturating_add;

/// An admitted call, held by the future that runs it until its outcome is known.
///
/// Finishing it records the outcome. Dropping it unfinished records nothing, except
/// that a probe's slot is given back, so that the next call can probe.
pub(crate) struct Pending {
    registry: BackoffRegistry,
    key: KeyBuf,
    ticket: Ticket,
    finished: bool,
}

impl Pending {
    #[inline]
    pub(crate) fn new(registry: BackoffRegistry, key: KeyBuf, ticket: Ticket) -> Self {
        Self {
            registry,
            key,
            ticket,
            finished: false,
        }
    }

    /// Returns the registry the call reports to.
    pub(crate) fn registry(&self) -> &BackoffRegistry {
        &self.registry
    }

    /// Returns the call's key.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Records the call's outcome (a success clears the key only if `clear_on_success`),
    /// then holds the key in backoff for `hold_for` if the server asked for that.
    /// Only the first call records anything.
    #[inline]
    pub(crate) fn finish(
        &mut self,
        outcome: Outcome,
        clear_on_success: bool,
        hold_for: Option<Duration>,
    ) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        self.registry
            .record_outcome(&self.key, self.ticket, outcome, clear_on_success);
        if let Some(wait) = hold_for {
            self.hold(wait);
        }
    }

    /// Holds the key in backoff for `wait`, as the server asked.
    fn hold(&self, wait: Duration) {
        let until = saturating_add(self.registry.now_instant(), wait);
        self.registry.hold_until(&self.key, until);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Only a probe holds anything to give back.
        if !self.finished && self.ticket.is_probe() {
            self.registry.abandon(&self.key, self.ticket);
        }
    }
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("key", &self.key)
            .field("ticket", &self.ticket)
            .finish_non_exhaustive()
    }
}
