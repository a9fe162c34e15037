//! Many threads at once: no lost failure, exactly one trip, no deadlock.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use url_backoff_registry::{BackoffEvent, BackoffRegistry, ManualClock, Rule};

const THREADS: usize = 64;
const ROUNDS: usize = 50;

fn registry(threshold: u32, max_keys: usize) -> (BackoffRegistry, ManualClock) {
    let clock = ManualClock::new();
    let registry = BackoffRegistry::builder()
        .threshold(threshold)
        .max_keys(max_keys)
        .clock(clock.clone())
        .build()
        .unwrap();
    (registry, clock)
}

/// Runs `work` on `THREADS` threads released together by a barrier.
fn all_at_once(registry: &BackoffRegistry, work: impl Fn(&BackoffRegistry) + Send + Sync) {
    let barrier = Barrier::new(THREADS);
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                barrier.wait();
                work(registry);
            });
        }
    });
}

#[test]
fn simultaneous_failures_are_never_lost() {
    for threshold in [64, 1_000] {
        for round in 0..ROUNDS {
            let (registry, _clock) = registry(threshold, 1_000);
            let key = format!("lossless-{round}.example");
            all_at_once(&registry, |registry| registry.record_failure(&key));

            let stats = registry.stats(&key);
            assert_eq!(stats.failures_in_window, 64, "threshold {threshold}");
            assert_eq!(stats.in_backoff, threshold == 64);
        }
    }
}

#[test]
fn simultaneous_failures_trip_a_key_exactly_once() {
    for round in 0..ROUNDS {
        let (registry, clock) = registry(3, 1_000);
        let mut events = registry.subscribe();
        let key = format!("trip-once-{round}.example");
        all_at_once(&registry, |registry| registry.record_failure(&key));

        let trips = std::iter::from_fn(|| events.try_recv().ok())
            .filter(|event| matches!(event, BackoffEvent::Tripped { .. }))
            .count();
        assert_eq!(trips, 1, "round {round}");
        let stats = registry.stats(&key);
        assert_eq!(
            stats.backoff_until,
            Some(clock.now() + Duration::from_secs(120))
        );
        assert_eq!(stats.failures_in_window, 3);
    }
}

/// Mixed writers, readers, rule changes, clears, prunes and evictions on a few keys
/// for two seconds. One key is only ever written, so its count must add up exactly.
#[test]
fn mixed_stress_finishes_and_counts_add_up() {
    const WRITES_PER_WRITER: usize = 5_000;
    const WRITERS: usize = 4;
    const MAX_KEYS: usize = 64;
    let (registry, clock) = registry(3, MAX_KEYS);

    // "counted" is in backoff for ever (so eviction keeps it while anything else can
    // go), never lets a failure age out, and remembers up to 65,536 of them.
    let counted = Rule::default()
        .threshold(1)
        .window(Duration::MAX)
        .backoff(Duration::MAX);
    registry.set_rule("counted", counted).unwrap();
    registry.record_failure("counted");
    registry
        .set_rule("counted", counted.threshold(65_536))
        .unwrap();

    let stop = AtomicBool::new(false);
    let over_cap = AtomicUsize::new(0);
    let (done, finished) = mpsc::channel();
    let deadline = Instant::now() + Duration::from_secs(2);

    thread::scope(|scope| {
        let registry = &registry;
        let stop = &stop;
        let over_cap = &over_cap;

        let mut workers = Vec::new();
        for writer in 0..WRITERS {
            workers.push(scope.spawn(move || {
                for round in 0..WRITES_PER_WRITER {
                    registry.record_failure("counted");
                    registry.record_failure(["a", "b", "c"][(writer + round) % 3]);
                }
            }));
        }
        workers.push(scope.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for key in ["counted", "a", "b", "c"] {
                    let _ = registry.should_backoff(key);
                    let _ = registry.stats(key);
                }
                let _ = registry.keys();
                if registry.len() > MAX_KEYS {
                    over_cap.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        workers.push(scope.spawn(move || {
            let rules = [
                Rule::default().threshold(2),
                Rule::default().window(Duration::MAX),
            ];
            for round in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                registry.set_rule("b", rules[round % 2]).unwrap();
                registry.clear_rule("c");
                registry.clear("a");
                registry.prune();
            }
        }));
        workers.push(scope.spawn(move || {
            for junk in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                registry.record_failure(&format!("junk-{junk}.example"));
            }
        }));
        workers.push(scope.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                clock.advance(Duration::from_millis(1));
                thread::yield_now();
            }
        }));

        scope.spawn(move || {
            while Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            stop.store(true, Ordering::Relaxed);
            for worker in workers {
                worker.join().unwrap();
            }
            done.send(()).unwrap();
        });

        finished
            .recv_timeout(Duration::from_secs(60))
            .expect("the stress run deadlocked");
    });

    assert_eq!(over_cap.load(Ordering::Relaxed), 0);
    assert!(registry.len() <= MAX_KEYS);
    assert!(registry.should_backoff("counted"));
    assert_eq!(
        registry.stats("counted").failures_in_window,
        1 + WRITERS * WRITES_PER_WRITER
    );
}
