//! The shared, concurrent [`BackoffRegistry`]: its public questions and the helpers
//! every state change goes through.
//!
//! The rest of the registry lives in submodules by job: admitting calls
//! (`admission`), recording what happened to them (`outcome`), an operator's manual
//! control (`control`), and looking at every key at once (`snapshot`).

mod admission;
mod control;
pub(crate) mod directory;
#[cfg(test)]
mod filter_tests;
mod outcome;
mod snapshot;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dashmap::DashMap;
use tokio::sync::broadcast;

pub(crate) use admission::{Mode, Ticket};

use crate::builder::BackoffRegistryBuilder;
use crate::clock::Clock;
use crate::error::{BackoffError, ConfigError};
use crate::escalation::JitterSource;
use crate::event::{BackoffEvent, TripCause};
use crate::notify::{wall_time, Notifier};
use crate::rule::{Policy, Rule, Settings};
use crate::state::{KeyState, Trip, TripClock, TripSource, TripStamp, NEVER_TRIPPED};
use crate::stats::Stats;
use crate::store::{Evicted, KeyStore, Standing};
use crate::time::{Tick, Timeline};
use crate::track::Track;
use directory::Listing;

/// Tracks failures per key and tells callers when a key is in backoff.
///
/// A key (normally a URI authority such as `api.example.com`) trips when `threshold`
/// failures fall inside a sliding `window`: a failure at `s` is inside at `now` while
/// `now - s <= window`. A tripped key is *in backoff* until `trip time + backoff`;
/// callers asking [`should_backoff`](Self::should_backoff) are told not to try. A
/// success ([`clear`](Self::clear)) forgets the key. Defaults: window 30 s, threshold
/// 3, backoff 120 s; [`set_rule`](Self::set_rule) overrides them per key.
///
/// Opt-in policies go beyond a fixed timer: [`Escalation`](crate::Escalation) lengthens
/// the backoff of a key that keeps tripping, and
/// [`probes`](crate::BackoffRegistryBuilder::probes) lets a single call test a key
/// when its backoff ends. [`subscribe`](Self::subscribe) streams every state change,
/// and [`snapshot`](Self::snapshot) shows every key at once.
///
/// # Sharing
///
/// Clones share one state, so one registry can be handed to every layer, task and
/// thread. All methods take `&self`, never block on I/O, and hold no lock when they
/// return.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use url_backoff_registry::{BackoffRegistry, ManualClock};
///
/// let clock = ManualClock::new();
/// let registry = BackoffRegistry::builder()
///     .threshold(2)
///     .backoff(Duration::from_secs(60))
///     .clock(clock.clone())
///     .build()
///     .unwrap();
///
/// registry.record_failure("api.example.com");
/// assert!(!registry.should_backoff("api.example.com"));
///
/// registry.record_failure("api.example.com");
/// assert!(registry.should_backoff("api.example.com"));
/// assert_eq!(
///     registry.next_retry_at("api.example.com"),
///     Some(clock.now() + Duration::from_secs(60))
/// );
///
/// clock.advance(Duration::from_secs(60));
/// assert!(!registry.should_backoff("api.example.com"));
/// ```
#[derive(Clone)]
pub struct BackoffRegistry {
    shared: Arc<Shared>,
}

/// Everything clones of one registry share.
struct Shared {
    store: KeyStore,
    rules: DashMap<Box<str>, Policy, foldhash::fast::RandomState>,
    /// Set by the first `set_rule`; until then no call looks rules up.
    has_rules: AtomicBool,
    settings: Settings,
    defaults: Policy,
    clock: Box<dyn Clock>,
    timeline: Timeline,
    last_trip: AtomicU64,
    jitter: Box<dyn JitterSource>,
    notifier: Notifier,
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::Metrics,
    /// Where the registry is listed in the process's directory.
    listing: Listing,
}

impl Drop for Shared {
    fn drop(&mut self) {
        directory::strike_off(self.listing);
    }
}

/// What the builder hands over.
pub(crate) struct Parts {
    pub(crate) settings: Settings,
    pub(crate) max_keys: usize,
    pub(crate) clock: Box<dyn Clock>,
    pub(crate) jitter: Box<dyn JitterSource>,
    pub(crate) event_capacity: usize,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: crate::metrics::MetricsOptions,
}

impl TripSource for Shared {
    /// Releases the stamp, so that a caller that acquires it also sees the key
    /// counted as gated before it (see `KeyStore`'s `GatedStamps`).
    fn next_stamp(&self) -> TripStamp {
        self.last_trip.fetch_add(1, Ordering::Release) + 1
    }

    fn jitter(&self) -> f64 {
        self.jitter.fraction()
    }
}

impl BackoffRegistry {
    /// Creates a registry with the default settings (window 30 s, threshold 3, backoff
    /// 120 s) and the [`SystemClock`](crate::SystemClock).
    pub fn new() -> Self {
        Self::builder()
            .build()
            .expect("the default settings are valid")
    }

    /// Starts building a registry with custom settings or clock.
    pub fn builder() -> BackoffRegistryBuilder {
        BackoffRegistryBuilder::default()
    }

    pub(crate) fn from_parts(parts: Parts) -> Result<Self, ConfigError> {
        let defaults = Policy::new(&parts.settings)?;
        if parts.max_keys == 0 {
            return Err(ConfigError::ZeroMaxKeys);
        }

        let timeline = Timeline::starting_at(parts.clock.now());
        let shared = Arc::new_cyclic(|this| Shared {
            store: KeyStore::new(parts.max_keys),
            rules: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            has_rules: AtomicBool::new(false),
            settings: parts.settings,
            defaults,
            clock: parts.clock,
            timeline,
            last_trip: AtomicU64::new(NEVER_TRIPPED),
            jitter: parts.jitter,
            notifier: Notifier::new(parts.event_capacity),
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::Metrics::new(parts.metrics),
            listing: directory::enlist(this.clone()),
        });
        Ok(Self::from_shared(shared))
    }

    fn from_shared(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Where the registry is listed in the process's directory.
    pub(crate) fn listing(&self) -> Listing {
        self.shared.listing
    }

    /// Returns how many handles to the registry exist, for tests.
    #[cfg(test)]
    pub(crate) fn handles(&self) -> usize {
        Arc::strong_count(&self.shared)
    }

    /// Records a failure of `key` now.
    ///
    /// The failure trips the key if it brings the failures inside the key's window to
    /// its threshold. A failure recorded while the key is in backoff is remembered but
    /// does not move the deadline.
    pub fn record_failure(&self, key: &str) {
        self.record_failure_at(key, None);
    }

    /// Records a success of `key` now, exactly as a successful call through the layer
    /// or [`track`](Self::track) would: its failures, backoff and pending probe are
    /// cleared, escalation is remembered while it fades, and a key that had tripped
    /// reports [`BackoffEvent::Recovered`].
    ///
    /// Unlike a call through the layer, it clears a key that is in backoff too: the
    /// caller says the host works. Use [`clear`](Self::clear) to forget a key silently
    /// and completely.
    pub fn record_success(&self, key: &str) {
        if self.shared.store.read(key, |_| ()).is_some() {
            self.apply_success(key, None);
        }
    }

    /// Returns whether calls to `key` should be held back now.
    ///
    /// Unknown keys are not in backoff; asking creates no state.
    pub fn should_backoff(&self, key: &str) -> bool {
        self.lookup(key).is_err()
    }

    /// Returns `Ok` if a call to `key` may go ahead now, or the [`BackoffError`]
    /// describing its backoff.
    ///
    /// A key whose backoff is over but which waits for a probe answers `Ok` while a
    /// probe slot is free (the caller would be the probe) and a probing refusal
    /// otherwise. Asking takes no slot and records nothing.
    pub fn check(&self, key: &str) -> Result<(), BackoffError> {
        self.lookup(key)
            .map_err(|refusal| self.refusal_error(key, refusal))
    }

    /// Returns when the key's current backoff ends, or `None` if it is not in backoff.
    pub fn next_retry_at(&self, key: &str) -> Option<Instant> {
        self.stats(key).backoff_until
    }

    /// Forgets the key's failures, backoff and escalation, silently. Its rule, if any,
    /// stays. To report a success the way the layer does, use
    /// [`record_success`](Self::record_success).
    pub fn clear(&self, key: &str) {
        // Nothing to clear is the common case: answer it without a write lock.
        if self.shared.store.read(key, |_| ()).is_none() {
            return;
        }
        self.remove_where(key, self.now(), |_| true);
    }

    /// Gives `key` its own window, threshold, backoff, escalation or probes; fields the
    /// rule leaves unset follow the registry's defaults. Replaces any earlier rule for
    /// the key.
    ///
    /// The rule applies from the next failure on: it does not trip or release a key by
    /// itself. A key whose failures had all aged out of its old window is forgotten
    /// rather than judged again by the new one. On error, nothing changes.
    ///
    /// Rules are configuration, not state: they survive [`clear`](Self::clear),
    /// [`prune`](Self::prune) and eviction.
    pub fn set_rule(&self, key: &str, rule: Rule) -> Result<(), ConfigError> {
        let policy = Policy::with_rule(&self.shared.settings, &rule)?;
        self.forget_if_stale(key);
        self.shared.has_rules.store(true, Ordering::Release);
        self.shared.rules.insert(key.into(), policy);
        Ok(())
    }

    /// Removes the key's rule, so it follows the registry's defaults again. Its
    /// failures and backoff stay (unless they had all aged out, as with
    /// [`set_rule`](Self::set_rule)).
    pub fn clear_rule(&self, key: &str) {
        self.forget_if_stale(key);
        self.shared.rules.remove(key);
    }

    /// Drops every key that holds nothing worth keeping (no failure inside its window,
    /// no active backoff, no pending probe, no escalation left to fade) and returns how
    /// many were dropped.
    ///
    /// The registry does this by itself, a little at a time, as it grows; call `prune`
    /// to release memory at a moment of your choosing.
    pub fn prune(&self) -> usize {
        let now = self.now();
        let swept = self.shared.store.sweep(&self.standing_at(now));
        self.changed(now, None, None);
        swept
    }

    /// Returns the key's failure count and backoff state now.
    ///
    /// `failures_in_window` counts the remembered failures inside the key's window.
    /// The registry remembers at most `threshold` failures per key (the threshold in
    /// force when each was recorded), so the count never exceeds that, however many
    /// more happened. Unknown keys report zeros; asking creates no state.
    pub fn stats(&self, key: &str) -> Stats {
        let now = self.now();
        let policy = self.policy_for(key);
        let seen = self.shared.store.read(key, |state| {
            (
                state.failures_within(now, &policy),
                state.backoff_until(now),
            )
        });
        let Some((failures_in_window, until)) = seen else {
            return Stats::default();
        };

        Stats {
            failures_in_window,
            in_backoff: until.is_some(),
            backoff_until: until.map(|tick| self.instant(tick)),
        }
    }

    /// Lists, sorted, every key with a failure still inside its window, an active
    /// backoff, or a pending probe.
    pub fn keys(&self) -> Vec<String> {
        let now = self.now();
        let mut keys = Vec::new();
        self.shared.store.for_each(|key, state| {
            if state.is_live(now, &self.policy_for(key)) {
                keys.push(key.to_owned());
            }
        });
        keys.sort_unstable();
        keys
    }

    /// Returns how many keys the registry holds state for, at most
    /// [`max_keys`](crate::BackoffRegistryBuilder::max_keys).
    ///
    /// Keys whose failures have aged out and whose backoff has ended are counted until
    /// they are swept (lazily, or by [`prune`](Self::prune)); [`keys`](Self::keys)
    /// lists only the live ones.
    pub fn len(&self) -> usize {
        self.shared.store.len()
    }

    /// Returns whether the registry holds state for no key at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns a receiver of every [`BackoffEvent`] from now on.
    ///
    /// Events travel through a bounded channel (see
    /// [`event_capacity`](crate::BackoffRegistryBuilder::event_capacity)) that never
    /// blocks the registry: a receiver that falls behind loses the oldest events and
    /// its next `recv` reports how many, as
    /// [`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged).
    ///
    /// ```
    /// use url_backoff_registry::{BackoffEvent, BackoffRegistry, Rule, TripCause};
    ///
    /// let registry = BackoffRegistry::new();
    /// let mut events = registry.subscribe();
    /// registry.set_rule("db.internal", Rule::default().threshold(1)).unwrap();
    /// registry.record_failure("db.internal");
    ///
    /// match events.try_recv().unwrap() {
    ///     BackoffEvent::Tripped { key, cause, .. } => {
    ///         assert_eq!(&*key, "db.internal");
    ///         assert_eq!(cause, TripCause::Threshold);
    ///     }
    ///     other => panic!("unexpected {other:?}"),
    /// }
    /// ```
    pub fn subscribe(&self) -> broadcast::Receiver<BackoffEvent> {
        self.shared.notifier.subscribe()
    }

    /// Guards `future` with the key's backoff state.
    ///
    /// When awaited, the returned [`Track`] first checks the key: in backoff, it
    /// resolves to [`TrackError::Backoff`](crate::TrackError::Backoff) without polling
    /// `future` and without recording anything. Otherwise it runs `future`: `Err(e)`
    /// records a failure and resolves to [`TrackError::Inner`](crate::TrackError::Inner);
    /// `Ok` clears the key unless [`Track::clear_on_success`] turned that off. A
    /// `Track` dropped before it finishes records nothing (a probe gives its slot
    /// back).
    ///
    /// ```
    /// use url_backoff_registry::{BackoffRegistry, TrackError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let registry = BackoffRegistry::new();
    /// let result: Result<u32, TrackError<&str>> =
    ///     registry.track("db.internal", async { Err("connection refused") }).await;
    /// assert_eq!(result, Err(TrackError::Inner("connection refused")));
    /// assert_eq!(registry.stats("db.internal").failures_in_window, 1);
    /// # }
    /// ```
    pub fn track<F, T, E>(&self, key: &str, future: F) -> Track<F>
    where
        F: Future<Output = Result<T, E>>,
    {
        Track::new(self.clone(), key, future)
    }

    /// Brings the `url_backoff_keys` and `url_backoff_keys_in_backoff` gauges up to
    /// date (feature `metrics`).
    ///
    /// The registry sets them whenever a key changes; a backoff that simply runs out
    /// changes nothing, so an exporter can call this just before it is scraped.
    #[cfg(feature = "metrics")]
    pub fn refresh_metrics(&self) {
        self.changed(self.now(), None, None);
    }

    /// Returns the clock's wall-clock time, for reading HTTP dates.
    pub(crate) fn system_now(&self) -> SystemTime {
        self.shared.clock.system_now()
    }

    /// Returns the clock's time.
    pub(crate) fn now_instant(&self) -> Instant {
        self.shared.clock.now()
    }

    /// Returns the clock's time as an instant and in ticks.
    fn now_both(&self) -> (Instant, Tick) {
        let now = self.shared.clock.now();
        (now, self.shared.timeline.tick(now))
    }

    fn now(&self) -> Tick {
        self.now_both().1
    }

    fn instant(&self, tick: Tick) -> Instant {
        self.shared.timeline.instant(tick)
    }

    fn policy_for(&self, key: &str) -> Policy {
        if !self.shared.has_rules.load(Ordering::Acquire) {
            return self.shared.defaults;
        }
        self.shared
            .rules
            .get(key)
            .map_or(self.shared.defaults, |policy| *policy)
    }

    /// Everything a state change at `now` under `policy` needs, with the trip stamps
    /// the store hands the change.
    fn trip_clock<'a>(now: Tick, policy: &'a Policy, stamps: &'a dyn TripSource) -> TripClock<'a> {
        TripClock {
            now,
            policy,
            source: stamps,
        }
    }

    /// Ranks keys for sweeping and eviction at `now`.
    fn standing_at(&self, now: Tick) -> impl Fn(&str, &KeyState) -> Standing + '_ {
        move |key, state| state.standing(now, &self.policy_for(key))
    }

    /// Changes the key's state with `change`, creating the state if needed (which may
    /// sweep or evict other keys to stay within `max_keys`). `change` draws any trip
    /// stamp from the source it is given. Evictions are reported once the store's locks
    /// are released.
    fn update<R>(
        &self,
        key: &str,
        now: Tick,
        change: impl FnOnce(&mut KeyState, &dyn TripSource) -> R,
    ) -> R {
        let mut evicted = Vec::new();
        let standing = self.standing_at(now);
        let (result, before, after) = self.shared.store.modify_or_insert(
            key,
            &standing,
            &mut evicted,
            &*self.shared,
            |state, stamps| Self::observe(state, now, |state| change(state, stamps)),
        );

        for Evicted { key, until } in evicted {
            self.changed(now, until, None);
            let in_backoff = until.is_some();
            self.notify(BackoffEvent::Evicted {
                key: key.into(),
                in_backoff,
            });
        }
        self.changed(now, before, after);
        result
    }

    /// Changes the key's state with `change` if the registry has any.
    fn update_existing<R>(
        &self,
        key: &str,
        now: Tick,
        change: impl FnOnce(&mut KeyState, &dyn TripSource) -> R,
    ) -> Option<R> {
        let (result, before, after) =
            self.shared
                .store
                .modify_existing(key, &*self.shared, |state, stamps| {
                    Self::observe(state, now, |state| change(state, stamps))
                })?;
        self.changed(now, before, after);
        Some(result)
    }

    /// Runs `change` and returns its result with the key's active deadline before and
    /// after it.
    fn observe<R>(
        state: &mut KeyState,
        now: Tick,
        change: impl FnOnce(&mut KeyState) -> R,
    ) -> (R, Option<Tick>, Option<Tick>) {
        let before = state.backoff_until(now);
        let result = change(state);
        (result, before, state.backoff_until(now))
    }

    /// Removes the key if `condition` holds for its state; returns the removed state.
    fn remove_where(
        &self,
        key: &str,
        now: Tick,
        condition: impl FnOnce(&KeyState) -> bool,
    ) -> Option<KeyState> {
        let removed = self.shared.store.remove_if(key, condition)?;
        self.changed(now, removed.backoff_until(now), None);
        Some(removed)
    }

    /// Keeps the metrics in step with a key whose active deadline went from `before`
    /// to `after` (feature `metrics`; otherwise nothing).
    #[cfg(feature = "metrics")]
    fn changed(&self, now: Tick, before: Option<Tick>, after: Option<Tick>) {
        self.shared.metrics.deadline_moved(before, after);
        self.shared.metrics.set_gauges(self.len(), now);
    }

    #[cfg(not(feature = "metrics"))]
    fn changed(&self, _now: Tick, _before: Option<Tick>, _after: Option<Tick>) {}

    /// Forgets `key` if it holds nothing worth keeping under its current policy.
    fn forget_if_stale(&self, key: &str) {
        let now = self.now();
        let policy = self.policy_for(key);
        self.remove_where(key, now, |state| {
            state.standing(now, &policy) == Standing::Stale
        });
    }

    /// The event for a trip of `key` at `now`.
    fn trip_event(
        &self,
        key: &str,
        trip: Trip,
        now: (Instant, Tick),
        cause: TripCause,
    ) -> BackoffEvent {
        let backoff = Duration::from_nanos(trip.until.saturating_sub(now.1));
        BackoffEvent::Tripped {
            key: key.into(),
            failures: trip.failures,
            until: self.instant(trip.until),
            until_wall: wall_time(self.system_now(), backoff),
            backoff,
            cause,
        }
    }

    fn notify(&self, event: BackoffEvent) {
        #[cfg(feature = "metrics")]
        self.shared.metrics.count(&event);
        self.shared.notifier.notify(event);
    }
}

impl Default for BackoffRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for BackoffRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = &self.shared.settings;
        f.debug_struct("BackoffRegistry")
            .field("window", &settings.window)
            .field("threshold", &settings.threshold)
            .field("backoff", &settings.backoff)
            .field("max_keys", &self.shared.store.max_keys())
            .field("entries", &self.len())
            .field("rules", &self.shared.rules.len())
            .finish_non_exhaustive()
    }
}
