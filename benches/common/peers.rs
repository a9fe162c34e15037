//! What the registry is measured against: the floor (a bare map lookup) and the
//! breakers and limiters people use today.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use failsafe::futures::CircuitBreaker as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use recloser::{AnyError, AsyncRecloser, Recloser, RecloserFuture};
use tower::Service;

/// The hasher of the floor map.
///
/// It must be the hasher of the registry's key map (`KeyStore::map` in `src/store.rs`,
/// today foldhash's `fast::RandomState`). When the registry's hasher changes, change
/// this line with it: the floor is only a floor if it hashes the same way.
pub(crate) type FloorHasher = foldhash::fast::RandomState;

/// The floor: a bare concurrent map from the same key strings to a small value, with
/// the registry's hasher. Nothing can answer "is this key known" faster than one
/// lookup in it.
///
/// Other hashers are there to show what a change of hasher would buy; only
/// [`FloorHasher`] makes the floor.
pub(crate) struct Floor<S = FloorHasher> {
    map: DashMap<String, u64, S>,
}

impl Floor {
    /// Builds a floor holding `keys`.
    pub(crate) fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        Self::with_hasher(keys)
    }
}

impl<S: BuildHasher + Clone + Default> Floor<S> {
    /// Builds a map holding `keys`, hashed with `S`.
    pub(crate) fn with_hasher<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        let map = DashMap::with_hasher(S::default());
        for (value, key) in keys.into_iter().enumerate() {
            map.insert(key.to_owned(), value as u64);
        }
        Self { map }
    }

    /// Looks `key` up and copies its value out.
    pub(crate) fn get(&self, key: &str) -> Option<u64> {
        self.map.get(key).map(|value| *value)
    }
}

/// The design of the original Python package: one lock around a map from key to the
/// times of its recent failures. A key is in backoff while `threshold` of its failures
/// fall inside the window.
pub(crate) struct NaiveRegistry {
    failures: Mutex<HashMap<String, Vec<Instant>, FloorHasher>>,
    window: Duration,
    threshold: usize,
}

impl NaiveRegistry {
    /// Creates an empty registry with the crate's default window and threshold.
    pub(crate) fn new() -> Self {
        Self {
            failures: Mutex::new(HashMap::default()),
            window: url_backoff_registry::DEFAULT_WINDOW,
            threshold: url_backoff_registry::DEFAULT_THRESHOLD as usize,
        }
    }

    /// Returns whether `threshold` failures of `key` fall inside the window. Reads the
    /// clock only for keys it knows.
    pub(crate) fn should_backoff(&self, key: &str) -> bool {
        let failures = self.failures.lock().expect("never poisoned");
        let Some(times) = failures.get(key) else {
            return false;
        };
        let now = Instant::now();
        let recent = times
            .iter()
            .filter(|&&time| now.duration_since(time) <= self.window);
        recent.count() >= self.threshold
    }

    /// Records a failure of `key` now, keeping only the `threshold` newest ones.
    pub(crate) fn record_failure(&self, key: &str) {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("never poisoned");
        match failures.get_mut(key) {
            Some(times) => {
                if times.len() >= self.threshold {
                    times.remove(0);
                }
                times.push(now);
            }
            None => {
                failures.insert(key.to_owned(), vec![now]);
            }
        }
    }
}

/// A recloser breaker with its default settings, closed.
pub(crate) fn recloser() -> Recloser {
    Recloser::default()
}

/// One successful call through a recloser breaker.
pub(crate) fn recloser_call(breaker: &Recloser) -> bool {
    breaker.call(|| Ok::<(), ()>(())).is_ok()
}

/// A failsafe breaker with its default settings, closed.
pub(crate) fn failsafe() -> impl failsafe::CircuitBreaker {
    failsafe::Config::new().build()
}

/// One successful call through a failsafe breaker.
pub(crate) fn failsafe_call(breaker: &impl failsafe::CircuitBreaker) -> bool {
    breaker.call(|| Ok::<(), ()>(())).is_ok()
}

/// A keyed governor limiter whose quota is never reached in a benchmark.
pub(crate) fn governor() -> DefaultKeyedRateLimiter<String> {
    RateLimiter::dashmap(Quota::per_second(NonZeroU32::MAX))
}

/// A recloser breaker in front of a tower service, the way a pipeline would use one:
/// each response future runs through [`AsyncRecloser`], which checks the breaker when
/// first polled and records the outcome.
pub(crate) struct RecloserService<S> {
    breaker: AsyncRecloser,
    inner: S,
}

impl<S> RecloserService<S> {
    /// Puts a closed breaker with recloser's default settings in front of `inner`.
    pub(crate) fn new(inner: S) -> Self {
        let breaker = AsyncRecloser::from(recloser());
        Self { breaker, inner }
    }
}

impl<S: Service<R>, R> Service<R> for RecloserService<S> {
    type Response = S::Response;
    type Error = recloser::Error<S::Error>;
    type Future = RecloserFuture<S::Future, AnyError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(recloser::Error::Inner)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.breaker.call(self.inner.call(request))
    }
}

/// The default failsafe breaker's type.
type FailsafeBreaker = failsafe::StateMachine<
    failsafe::failure_policy::OrElse<
        failsafe::failure_policy::SuccessRateOverTimeWindow<failsafe::backoff::EqualJittered>,
        failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::EqualJittered>,
    >,
    (),
>;

/// A failsafe breaker in front of a tower service, through failsafe's own future
/// support, as [`RecloserService`] does for recloser.
pub(crate) struct FailsafeService<S> {
    breaker: FailsafeBreaker,
    inner: S,
}

impl<S> FailsafeService<S> {
    /// Puts a closed breaker with failsafe's default settings in front of `inner`.
    pub(crate) fn new(inner: S) -> Self {
        let breaker = failsafe::Config::new().build();
        Self { breaker, inner }
    }
}

impl<S: Service<R>, R> Service<R> for FailsafeService<S> {
    type Response = S::Response;
    type Error = failsafe::Error<S::Error>;
    type Future = failsafe::futures::ResponseFuture<
        S::Future,
        <FailsafeBreaker as failsafe::futures::CircuitBreaker>::FailurePolicy,
        (),
        failsafe::Any,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(failsafe::Error::Inner)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.breaker.call(self.inner.call(request))
    }
}
