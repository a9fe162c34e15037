//! An operator's manual control over one key.

use std::time::Instant;

use super::BackoffRegistry;
use crate::event::{BackoffEvent, TripCause};
use crate::state::{KeyState, Trip};

impl BackoffRegistry {
    /// Puts `key` into backoff until exactly `until`, whatever its failures and even if
    /// that is earlier than its current deadline: an operator's decision. A time not
    /// after now [`release`](Self::release)s the key instead.
    ///
    /// It counts as a trip (cause [`TripCause::Forced`]); with probing on, the key
    /// waits for a probe when the forced backoff ends.
    ///
    /// ```
    /// use std::time::Duration;
    /// use url_backoff_registry::{BackoffRegistry, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let registry = BackoffRegistry::builder().clock(clock.clone()).build().unwrap();
    /// let until = clock.now() + Duration::from_secs(600);
    ///
    /// registry.force_backoff("legacy.internal", until);
    /// assert_eq!(registry.next_retry_at("legacy.internal"), Some(until));
    ///
    /// assert!(registry.release("legacy.internal"));
    /// assert!(!registry.should_backoff("legacy.internal"));
    /// ```
    pub fn force_backoff(&self, key: &str, until: Instant) {
        let now = self.now_both();
        let until = self.shared.timeline.tick(until);
        if until <= now.1 {
            self.release(key);
            return;
        }

        let policy = self.policy_for(key);
        let trip = self.update(key, now.1, |state, stamps| {
            let until = state.force_until(&Self::trip_clock(now.1, &policy, stamps), until);
            let failures = state.failures_within(now.1, &policy);
            Trip { failures, until }
        });
        self.notify(self.trip_event(key, trip, now, TripCause::Forced));
    }

    /// Ends the key's backoff now and forgets its failures, pending probe and
    /// escalation, as an operator's decision, and reports
    /// [`BackoffEvent::Released`]. Returns whether the key was in backoff or waiting
    /// for a probe; a key that was not is left exactly as it was.
    pub fn release(&self, key: &str) -> bool {
        let now = self.now();
        let held = |state: &KeyState| state.in_backoff(now) || state.is_probing(now);
        let released = self.remove_where(key, now, held).is_some();
        if released {
            self.notify(BackoffEvent::Released { key: key.into() });
        }
        released
    }
}
