//! The shared, concurrent [`BackoffRegistry`].

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dashmap::mapref::one::RefMut;
use dashmap::DashMap;

use crate::builder::BackoffRegistryBuilder;
use crate::classify::Outcome;
use crate::clock::Clock;
use crate::error::{BackoffError, ConfigError};
use crate::events::{emit, Event, TripCause};
use crate::rule::{Policy, Rule, Settings};
use crate::state::{FailureEffect, KeyState, TripStamp, NEVER_TRIPPED};
use crate::stats::Stats;
use crate::store::{KeyStore, Standing};
use crate::time::{Tick, Timeline};
use crate::track::Track;

/// Tracks failures per key and tells callers when a key is in backoff.
///
/// A key (normally a URI authority such as `api.example.com`) trips when `threshold`
/// failures fall inside a sliding `window`: a failure at `s` is inside at `now` while
/// `now - s <= window`. A tripped key is *in backoff* until `trip time + backoff`;
/// callers asking [`should_backoff`](Self::should_backoff) are told not to try. A
/// success ([`clear`](Self::clear)) forgets the key. Defaults: window 30 s, threshold
/// 3, backoff 120 s; [`set_rule`](Self::set_rule) overrides them per key.
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

struct Shared {
    store: KeyStore,
    rules: DashMap<Box<str>, Policy>,
    settings: Settings,
    defaults: Policy,
    clock: Box<dyn Clock>,
    timeline: Timeline,
    last_trip: AtomicU64,
}

/// Proof that a call was admitted, carrying what the key looked like at that moment
/// so that a late outcome can be judged against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    trip: TripStamp,
}

impl Ticket {
    /// Returns whether `state` has not tripped since this ticket was issued.
    ///
    /// Trip stamps only grow, so a trip after admission carries a larger stamp; a key
    /// that was removed and created again starts from [`NEVER_TRIPPED`] and still
    /// counts as current.
    fn still_current(&self, state: &KeyState) -> bool {
        state.trip() <= self.trip
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

    pub(crate) fn from_parts(
        settings: Settings,
        max_keys: usize,
        clock: Box<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        let defaults = Policy::new(settings.window, settings.threshold, settings.backoff)?;
        if max_keys == 0 {
            return Err(ConfigError::ZeroMaxKeys);
        }
        let timeline = Timeline::starting_at(clock.now());
        let shared = Shared {
            store: KeyStore::new(max_keys),
            rules: DashMap::new(),
            settings,
            defaults,
            clock,
            timeline,
            last_trip: AtomicU64::new(NEVER_TRIPPED),
        };
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// Records a failure of `key` now.
    ///
    /// The failure trips the key if it brings the failures inside the key's window to
    /// its threshold. A failure recorded while the key is in backoff is remembered but
    /// does not move the deadline.
    pub fn record_failure(&self, key: &str) {
        self.record_failure_at(key, None);
    }

    /// Returns whether calls to `key` should be held back now.
    ///
    /// Unknown keys are not in backoff; asking creates no state.
    pub fn should_backoff(&self, key: &str) -> bool {
        self.check(key).is_err()
    }

    /// Returns `Ok` if a call to `key` may go ahead now, or the [`BackoffError`]
    /// describing its backoff.
    pub fn check(&self, key: &str) -> Result<(), BackoffError> {
        self.lookup(key).map(|_ticket| ())
    }

    /// Returns when the key's current backoff ends, or `None` if it is not in backoff.
    pub fn next_retry_at(&self, key: &str) -> Option<Instant> {
        self.stats(key).backoff_until
    }

    /// Forgets the key's failures and ends its backoff. Its rule, if any, stays.
    pub fn clear(&self, key: &str) {
        self.shared.store.remove(key);
    }

    /// Gives `key` its own window, threshold or backoff; fields the rule leaves unset
    /// follow the registry's defaults. Replaces any earlier rule for the key.
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
    /// no active backoff) and returns how many were dropped.
    ///
    /// The registry does this by itself, a little at a time, as it grows; call `prune`
    /// to release memory at a moment of your choosing.
    pub fn prune(&self) -> usize {
        let now = self.now();
        self.shared.store.sweep(&self.standing_at(now))
    }

    /// Returns the key's failure count and backoff state now.
    ///
    /// `failures_in_window` counts the remembered failures inside the key's window.
    /// The registry remembers at most `threshold` failures per key (the threshold in
    /// force when each was recorded), so the count never exceeds that, however many
    /// more happened. Unknown keys report zeros; asking creates no state.
    pub fn stats(&self, key: &str) -> Stats {
        let Some(state) = self.shared.store.get(key) else {
            return Stats::default();
        };

        let now = self.now();
        let policy = self.policy_for(key);
        let until = state.backoff_until(now);
        Stats {
            failures_in_window: state.failures_within(now, &policy),
            in_backoff: until.is_some(),
            backoff_until: until.map(|tick| self.shared.timeline.instant(tick)),
        }
    }

    /// Lists, sorted, every key with a failure still inside its window or an active
    /// backoff.
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

    /// Guards `future` with the key's backoff state.
    ///
    /// When awaited, the returned [`Track`] first checks the key: in backoff, it
    /// resolves to [`TrackError::Backoff`](crate::TrackError::Backoff) without polling
    /// `future` and without recording anything. Otherwise it runs `future`: `Err(e)`
    /// records a failure and resolves to [`TrackError::Inner`](crate::TrackError::Inner);
    /// `Ok` clears the key unless [`Track::clear_on_success`] turned that off. A
    /// `Track` dropped before it finishes records nothing.
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

    /// Admits a call to `key`, or refuses it while the key is in backoff.
    ///
    /// This is the per-request check: it takes a shared (read) lock on one shard and
    /// reads the clock only for keys that have tripped at some point.
    pub(crate) fn admit(&self, key: &str) -> Result<Ticket, BackoffError> {
        self.lookup(key).inspect_err(|refused| {
            emit(&Event::ShortCircuited {
                key,
                until: refused.until(),
                retry_after: refused.retry_after(),
            });
        })
    }

    /// [`admit`](Self::admit) without reporting a refusal: a plain query.
    fn lookup(&self, key: &str) -> Result<Ticket, BackoffError> {
        let Some(state) = self.shared.store.get(key) else {
            return Ok(Ticket {
                trip: NEVER_TRIPPED,
            });
        };

        if state.has_deadline() {
            let now_instant = self.shared.clock.now();
            let now = self.shared.timeline.tick(now_instant);
            if let Some(until) = state.backoff_until(now) {
                let until = self.shared.timeline.instant(until);
                return Err(BackoffError::new(key, until, now_instant));
            }
        }

        Ok(Ticket { trip: state.trip() })
    }

    /// Holds `key` in backoff until at least `until`, because the server asked for it
    /// (a `Retry-After` header, for example). A key not in backoff trips at once, below
    /// its threshold; an existing deadline is only ever extended; a time not after
    /// now changes nothing.
    pub(crate) fn hold_until(&self, key: &str, until: Instant) {
        let now_instant = self.shared.clock.now();
        let now = self.shared.timeline.tick(now_instant);
        let until = self.shared.timeline.tick(until);
        if until <= now {
            return;
        }

        let policy = self.policy_for(key);
        let (tripped, before, failures) = {
            let mut state = self.entry_mut(key, now);
            let before = state.backoff_until(now);
            let tripped = state.hold_until(now, until, || self.next_trip_stamp());
            (tripped, before, state.failures_within(now, &policy))
        };

        let until_instant = self.shared.timeline.instant(until);
        let backoff = until_instant.saturating_duration_since(now_instant);
        let until_wall = self.wall_time(backoff);
        if tripped {
            emit(&Event::Tripped {
                key,
                failures,
                until: until_instant,
                until_wall,
                backoff,
                cause: TripCause::ServerHint,
            });
        } else if before.is_some_and(|before| before < until) {
            emit(&Event::Extended {
                key,
                until: until_instant,
                until_wall,
                backoff,
                cause: TripCause::ServerHint,
            });
        }
    }

    /// Applies the outcome of a call admitted with `ticket`.
    ///
    /// A call whose key tripped after it was admitted is a *late* outcome: its success
    /// does not clear the key, and its failure is remembered but cannot trip it.
    pub(crate) fn record_outcome(&self, key: &str, ticket: Ticket, outcome: Outcome) {
        match outcome {
            Outcome::Success => self.clear_if_unchanged(key, ticket),
            Outcome::Failure => self.record_failure_at(key, Some(ticket)),
            Outcome::Neutral => {}
        }
    }

    /// Clears `key` unless it tripped since `ticket` was issued. Takes only a read
    /// lock when there is nothing to clear.
    fn clear_if_unchanged(&self, key: &str, ticket: Ticket) {
        let unchanged = match self.shared.store.get(key) {
            None => return,
            Some(state) => ticket.still_current(&state),
        };
        if !unchanged {
            return;
        }

        let removed = self
            .shared
            .store
            .remove_if(key, |state| ticket.still_current(state));
        if removed.is_some_and(|state| state.trip() != NEVER_TRIPPED) {
            emit(&Event::Recovered { key });
        }
    }

    fn record_failure_at(&self, key: &str, ticket: Option<Ticket>) {
        let now_instant = self.shared.clock.now();
        let now = self.shared.timeline.tick(now_instant);
        let policy = self.policy_for(key);

        let effect = {
            let mut state = self.entry_mut(key, now);
            let may_trip = ticket.is_none_or(|ticket| ticket.still_current(&state));
            state.record_failure(now, &policy, may_trip, || self.next_trip_stamp())
        };

        if let FailureEffect::Tripped { failures, until } = effect {
            let backoff = Duration::from_nanos(until.saturating_sub(now));
            emit(&Event::Tripped {
                key,
                failures,
                until: self.shared.timeline.instant(until),
                until_wall: self.wall_time(backoff),
                backoff,
                cause: TripCause::Threshold,
            });
        }
    }

    /// Returns the wall-clock time `from_now` after the clock's present, or `None` if
    /// `SystemTime` cannot represent it.
    fn wall_time(&self, from_now: Duration) -> Option<SystemTime> {
        self.system_now().checked_add(from_now)
    }

    /// Returns the clock's wall-clock time, for reading HTTP dates.
    pub(crate) fn system_now(&self) -> SystemTime {
        self.shared.clock.system_now()
    }

    /// Returns the clock's time.
    pub(crate) fn now_instant(&self) -> Instant {
        self.shared.clock.now()
    }

    /// Returns the key's state for writing, creating it if needed (which may sweep or
    /// evict other keys to stay within `max_keys`).
    fn entry_mut(&self, key: &str, now: Tick) -> RefMut<'_, Box<str>, KeyState> {
        self.shared.store.get_or_insert(key, &self.standing_at(now))
    }

    /// Forgets `key` if it holds nothing worth keeping under its current policy.
    fn forget_if_stale(&self, key: &str) {
        let now = self.now();
        let policy = self.policy_for(key);
        self.shared
            .store
            .remove_if(key, |state| !state.is_live(now, &policy));
    }

    /// Ranks keys for sweeping and eviction at `now`.
    fn standing_at(&self, now: Tick) -> impl Fn(&str, &KeyState) -> Standing + '_ {
        move |key, state| state.standing(now, &self.policy_for(key))
    }

    fn next_trip_stamp(&self) -> TripStamp {
        self.shared.last_trip.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn policy_for(&self, key: &str) -> Policy {
        self.shared
            .rules
            .get(key)
            .map_or(self.shared.defaults, |policy| *policy)
    }

    fn now(&self) -> Tick {
        self.shared.timeline.tick(self.shared.clock.now())
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
