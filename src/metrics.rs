//! Counters and gauges through the [`metrics`] crate (feature `metrics`).
//!
//! | Metric | Kind | Labels |
//! | --- | --- | --- |
//! | `url_backoff_trips_total` | counter | `cause` |
//! | `url_backoff_short_circuits_total` | counter | `shadow` |
//! | `url_backoff_recoveries_total` | counter | |
//! | `url_backoff_probes_total` | counter | `result` (`admitted`, `succeeded`, ...) |
//! | `url_backoff_evictions_total` | counter | |
//!
//! Probe results are `admitted`, `succeeded`, `failed` and `abandoned`.
//! | `url_backoff_keys` | gauge | |
//! | `url_backoff_keys_in_backoff` | gauge | |
//!
//! With [`MetricsOptions::key_labels`], the counters also carry a `key` label, for at
//! most the configured number of distinct keys; later keys share `key="other"`, so a
//! flood of hosts from traffic cannot explode the number of series.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use metrics::{counter, gauge, Label};

use crate::event::BackoffEvent;
use crate::time::Tick;

/// What the registry reports through the [`metrics`] crate; set with
/// [`BackoffRegistryBuilder::metrics`](crate::BackoffRegistryBuilder::metrics).
///
/// ```
/// use url_backoff_registry::{BackoffRegistry, MetricsOptions};
///
/// // Label counters with the key for up to 100 distinct keys.
/// let registry = BackoffRegistry::builder()
///     .metrics(MetricsOptions::default().key_labels(100))
///     .build()
///     .unwrap();
/// # drop(registry);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsOptions {
    max_labeled_keys: usize,
}

impl MetricsOptions {
    /// Adds a `key` label to the counters for up to `max_keys` distinct keys (default
    /// 0: no key labels). Keys seen after that are counted as `key="other"`.
    #[must_use]
    pub fn key_labels(mut self, max_keys: usize) -> Self {
        self.max_labeled_keys = max_keys;
        self
    }
}

/// The registry's side of the metrics: label budget and the gauge of keys in backoff.
pub(crate) struct Metrics {
    options: MetricsOptions,
    labeled: Mutex<HashSet<Arc<str>>>,
    /// Active deadlines, with how many keys end their backoff at each.
    deadlines: Mutex<BTreeMap<Tick, usize>>,
}

impl Metrics {
    pub(crate) fn new(options: MetricsOptions) -> Self {
        Self {
            options,
            labeled: Mutex::new(HashSet::new()),
            deadlines: Mutex::new(BTreeMap::new()),
        }
    }

    /// Counts `event`.
    pub(crate) fn count(&self, event: &BackoffEvent) {
        let mut labels = self.key_label(event).into_iter().collect::<Vec<_>>();
        let mut with = |name: &'static str, value: &'static str| {
            labels.push(Label::new(name, value));
            labels.clone()
        };

        match event {
            BackoffEvent::Tripped { cause, .. } => {
                counter!("url_backoff_trips_total", with("cause", cause.as_str())).increment(1);
            }
            BackoffEvent::ShortCircuited { shadow, .. } => {
                let shadow = if *shadow { "true" } else { "false" };
                counter!("url_backoff_short_circuits_total", with("shadow", shadow)).increment(1);
            }
            BackoffEvent::Recovered { .. } => {
                counter!("url_backoff_recoveries_total", labels).increment(1);
            }
            BackoffEvent::ProbeAdmitted { .. } => {
                counter!("url_backoff_probes_total", with("result", "admitted")).increment(1);
            }
            BackoffEvent::ProbeFinished { result, .. } => {
                counter!("url_backoff_probes_total", with("result", result.as_str())).increment(1);
            }
            BackoffEvent::Evicted { .. } => {
                counter!("url_backoff_evictions_total", labels).increment(1);
            }
            BackoffEvent::Extended { .. } | BackoffEvent::Released { .. } => {}
        }
    }

    /// Notes that a key's active deadline changed from `before` to `after` (either
    /// `None` when not in backoff).
    pub(crate) fn deadline_moved(&self, before: Option<Tick>, after: Option<Tick>) {
        if before == after {
            return;
        }
        let mut deadlines = lock(&self.deadlines);
        if let Some(before) = before {
            if let Some(count) = deadlines.get_mut(&before) {
                *count -= 1;
                if *count == 0 {
                    deadlines.remove(&before);
                }
            }
        }
        if let Some(after) = after {
            *deadlines.entry(after).or_default() += 1;
        }
    }

    /// Sets the gauges: `keys` tracked, and keys in backoff at `now`.
    pub(crate) fn set_gauges(&self, keys: usize, now: Tick) {
        let in_backoff = {
            let mut deadlines = lock(&self.deadlines);
            let ongoing = deadlines.split_off(&now.saturating_add(1));
            *deadlines = ongoing;
            deadlines.values().sum::<usize>()
        };
        gauge!("url_backoff_keys").set(keys as f64);
        gauge!("url_backoff_keys_in_backoff").set(in_backoff as f64);
    }

    /// The `key` label of `event`, if key labels are on.
    fn key_label(&self, event: &BackoffEvent) -> Option<Label> {
        if self.options.max_labeled_keys == 0 {
            return None;
        }

        let key = event.key();
        let mut labeled = lock(&self.labeled);
        let known = labeled.contains(key);
        if !known && labeled.len() >= self.options.max_labeled_keys {
            return Some(Label::new("key", "other"));
        }
        if !known {
            labeled.insert(key.into());
        }
        Some(Label::new("key", key.to_owned()))
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Locks `mutex`; the data stays consistent even if a holder panicked, since every
/// update above is a single step.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
