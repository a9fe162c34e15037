//! Every key at once, for dashboards and admin endpoints.

use std::time::Duration;

use super::BackoffRegistry;
use crate::snapshot::KeySnapshot;
use crate::store::Standing;

impl BackoffRegistry {
    /// Returns every key with something to show, sorted by key: a failure inside its
    /// window, an active backoff, a pending probe, or escalation still fading.
    ///
    /// The keys are read one shard at a time, so under concurrent traffic the result
    /// is not one atomic picture; each entry is consistent in itself.
    ///
    /// ```
    /// use url_backoff_registry::{BackoffRegistry, Rule};
    ///
    /// let registry = BackoffRegistry::new();
    /// registry.set_rule("a.example", Rule::default().threshold(1)).unwrap();
    /// registry.record_failure("a.example");
    /// registry.record_failure("b.example");
    ///
    /// let snapshot = registry.snapshot();
    /// assert_eq!(snapshot.len(), 2);
    /// assert!(snapshot[0].in_backoff);
    /// assert_eq!(snapshot[0].trips, 1);
    /// assert_eq!(snapshot[1].failures_in_window, 1);
    /// ```
    pub fn snapshot(&self) -> Vec<KeySnapshot> {
        let now = self.now();
        let mut snapshots = Vec::new();
        self.shared.store.for_each(|key, state| {
            let policy = self.policy_for(key);
            if state.standing(now, &policy) == Standing::Stale {
                return;
            }

            let until = state.backoff_until(now);
            snapshots.push(KeySnapshot {
                key: key.to_owned(),
                failures_in_window: state.failures_within(now, &policy),
                in_backoff: until.is_some(),
                backoff_until: until.map(|until| self.instant(until)),
                retry_after: until.map(|until| Duration::from_nanos(until - now)),
                probing: state.is_probing(now),
                trips: state.trips(),
                multiplier: state.multiplier(now, &policy),
            });
        });
        snapshots.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        snapshots
    }
}
