//! Pieces the benches share: registries in known states, the floor and the peers, and
//! a way to drive a tower service to completion without a runtime.

#![allow(dead_code)] // Each bench uses only some of these.

pub(crate) mod peers;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use tower::Service;
use url_backoff_registry::{BackoffRegistry, ManualClock};

/// A key the registry has never seen.
pub(crate) const UNKNOWN: &str = "unknown.example.com";
/// A key with one failure: tracked, but not in backoff.
pub(crate) const HEALTHY: &str = "healthy.example.com";
/// A key whose failures reached the threshold, so it is in backoff.
pub(crate) const BACKING_OFF: &str = "backoff.example.com";

/// Builds a registry with the default rules, room for `max_keys` keys, and a clock
/// that never moves unless told to (so a key in backoff stays there).
pub(crate) fn registry(max_keys: usize) -> BackoffRegistry {
    BackoffRegistry::builder()
        .clock(ManualClock::new())
        .max_keys(max_keys)
        .build()
        .expect("the default rules are valid")
}

/// Records failures on `key` until it is in backoff.
pub(crate) fn trip(registry: &BackoffRegistry, key: &str) {
    while !registry.should_backoff(key) {
        registry.record_failure(key);
    }
}

/// A registry holding [`HEALTHY`] with one failure and [`BACKING_OFF`] in backoff;
/// [`UNKNOWN`] is absent.
pub(crate) fn registry_with_known_keys() -> BackoffRegistry {
    let registry = registry(url_backoff_registry::DEFAULT_MAX_KEYS);
    registry.record_failure(HEALTHY);
    trip(&registry, BACKING_OFF);
    registry
}

/// Calls `service` once and polls the response future, which must be ready at once,
/// with a waker that does nothing.
pub(crate) fn drive<S, R>(service: &mut S, request: R) -> Result<S::Response, S::Error>
where
    S: Service<R>,
{
    let mut cx = Context::from_waker(Waker::noop());
    match service.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(error)) => return Err(error),
        Poll::Pending => panic!("the benched services are always ready"),
    }
    let future = pin!(service.call(request));
    match future.poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the benched services answer at once"),
    }
}

/// Returns `count` keys of the form `host-<n>.example`, starting at `first`, with `n`
/// written in seven digits: every key has the same length, so that a bench comparing
/// key sets compares the sets and not the cost of hashing longer texts.
pub(crate) fn hosts(first: usize, count: usize) -> Vec<String> {
    (first..first + count)
        .map(|n| format!("host-{n:07}.example"))
        .collect()
}

/// Shuffles `items` in place with a fixed seed, so that every run visits them in the
/// same order.
pub(crate) fn shuffle<T>(items: &mut [T]) {
    // xorshift64*: any fixed, well-mixed sequence will do.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..items.len()).rev() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let random = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let j = usize::try_from(random % (i as u64 + 1)).expect("fits in usize");
        items.swap(i, j);
    }
}
