//! A clock that steps backwards: nothing panics, no failure is lost, and no deadline is
//! ever pulled in.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url_backoff_registry::{BackoffRegistry, Clock, Rule};

/// A clock the test sets to any time, earlier ones included.
#[derive(Clone)]
struct SettableClock {
    start: Instant,
    now: Arc<Mutex<Instant>>,
}

impl SettableClock {
    fn new() -> Self {
        // Start a day in, so the test can step back before the start.
        let start = Instant::now() + Duration::from_secs(86_400);
        Self {
            start,
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Sets the time to `start + secs` (negative: before the start).
    fn set(&self, secs: i64) {
        let offset = Duration::from_secs(secs.unsigned_abs());
        let now = if secs >= 0 {
            self.start + offset
        } else {
            self.start - offset
        };
        *self.now.lock().unwrap() = now;
    }

    fn at(&self, secs: u64) -> Instant {
        self.start + Duration::from_secs(secs)
    }
}

impl Clock for SettableClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap()
    }
}

fn registry(clock: &SettableClock, threshold: u32) -> BackoffRegistry {
    BackoffRegistry::builder()
        .threshold(threshold)
        .clock(clock.clone())
        .build()
        .unwrap()
}

#[test]
fn failures_recorded_out_of_order_are_all_counted() {
    let clock = SettableClock::new();
    let registry = registry(&clock, 100);
    for secs in [20, 10, 25, 5, 15] {
        clock.set(secs);
        registry.record_failure("k");
    }

    clock.set(25);
    assert_eq!(registry.stats("k").failures_in_window, 5);
    // Window 30 s at t = 40: the failures at 10, 15, 20 and 25 remain.
    clock.set(40);
    assert_eq!(registry.stats("k").failures_in_window, 4);
}

#[test]
fn a_failure_in_the_past_never_shortens_a_deadline() {
    let clock = SettableClock::new();
    let registry = registry(&clock, 3);
    clock.set(100);
    for _ in 0..3 {
        registry.record_failure("k");
    }
    let until = clock.at(220);
    assert_eq!(registry.next_retry_at("k"), Some(until));

    // Back to t = 50: still before the deadline, so the key is in backoff and more
    // failures leave the deadline where it is.
    clock.set(50);
    registry.record_failure("k");
    assert!(registry.should_backoff("k"));
    assert_eq!(registry.next_retry_at("k"), Some(until));
}

#[test]
fn a_trip_after_stepping_back_keeps_the_later_deadline() {
    let clock = SettableClock::new();
    let registry = registry(&clock, 1);
    registry
        .set_rule(
            "k",
            Rule::default()
                .threshold(1)
                .backoff(Duration::from_secs(100)),
        )
        .unwrap();
    clock.set(200);
    registry.record_failure("k");
    assert_eq!(registry.next_retry_at("k"), Some(clock.at(300)));

    // Past the deadline, then back before it but after the trip: in backoff again,
    // with the original deadline.
    clock.set(310);
    assert!(!registry.should_backoff("k"));
    clock.set(250);
    assert_eq!(registry.next_retry_at("k"), Some(clock.at(300)));
}

#[test]
fn a_clock_before_the_registry_was_built_does_not_panic() {
    let clock = SettableClock::new();
    let registry = registry(&clock, 2);
    clock.set(-3_600);
    registry.record_failure("k");
    registry.record_failure("k");
    assert!(registry.should_backoff("k"));
    assert_eq!(registry.stats("k").failures_in_window, 2);
    let _ = registry.keys();
    assert_eq!(registry.prune(), 0);

    // Times before the registry existed count as its first instant: the backoff runs
    // from there.
    assert_eq!(registry.next_retry_at("k"), Some(clock.at(120)));
}
