//! Many threads at once: no lost failure, exactly one trip, no deadlock.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use url_backoff_registry::{BackoffRegistry, ManualClock, Rule};

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
    let trips = trip_counter();
    for round in 0..ROUNDS {
        let (registry, clock) = registry(3, 1_000);
        let key = format!("trip-once-{round}.example");
        let before = trips.count(&key);
        all_at_once(&registry, |registry| registry.record_failure(&key));

        assert_eq!(trips.count(&key) - before, 1, "round {round}");
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

/// Counts "key entered backoff" events per key, from every thread.
struct TripCounter {
    keys: std::sync::Mutex<Vec<String>>,
}

impl TripCounter {
    fn count(&self, key: &str) -> usize {
        let keys = self.keys.lock().unwrap();
        keys.iter().filter(|tripped| *tripped == key).count()
    }
}

fn trip_counter() -> &'static TripCounter {
    static COUNTER: OnceLock<&'static TripCounter> = OnceLock::new();
    COUNTER.get_or_init(|| {
        let counter: &'static TripCounter = Box::leak(Box::new(TripCounter {
            keys: std::sync::Mutex::new(Vec::new()),
        }));
        tracing::subscriber::set_global_default(CountingSubscriber(counter))
            .expect("no other global subscriber in this test binary");
        counter
    })
}

struct CountingSubscriber(&'static TripCounter);

impl tracing::Subscriber for CountingSubscriber {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::INFO
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = TripFields::default();
        event.record(&mut fields);
        if fields.message.as_deref() == Some("key entered backoff") {
            if let Some(key) = fields.key {
                self.0.keys.lock().unwrap().push(key);
            }
        }
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

#[derive(Default)]
struct TripFields {
    message: Option<String>,
    key: Option<String>,
}

impl tracing::field::Visit for TripFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "key" {
            self.key = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        }
    }
}

#[test]
fn the_trip_counter_sees_trips_from_other_threads() {
    let trips = trip_counter();
    let (registry, _clock) = registry(1, 10);
    let key = "counter-check.example";
    let shared = Arc::new(registry);
    let worker = Arc::clone(&shared);
    thread::spawn(move || worker.record_failure(key))
        .join()
        .unwrap();
    assert_eq!(trips.count(key), 1);
}
