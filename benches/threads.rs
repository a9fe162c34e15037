//! The registry's operations on 1, 2 and 4 threads sharing one registry.
//!
//! Each sample starts the threads behind a barrier and times every thread's own loop,
//! so the reported time is per operation *per thread*: on a machine with enough cores,
//! a registry that scales perfectly shows the same number at every thread count.
//! *Contended* runs put every thread on one key (one map shard); *spread* runs give
//! each thread its own key. Spread keys land in shards chosen by a randomly seeded
//! hasher, so two of them can share a shard in some runs.
//!
//! `unshared_control` hashes the thread's key and reads nothing else: threads running
//! it share no memory that is written, so its figures on 2 threads against 1 show what
//! running two threads costs on the machine itself, to read the other ratios against.
//!
//! Run: `cargo bench --bench threads`. Thread counts above the machine's core count
//! measure time-slicing, not the registry.

mod common;

use std::hash::BuildHasher;
use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use url_backoff_registry::BackoffRegistry;

use common::peers::Floor;

const THREADS: [usize; 3] = [1, 2, 4];
const MAX_THREADS: usize = 4;

/// Which key each thread uses.
#[derive(Clone, Copy)]
enum Keys {
    /// All threads use the key of thread 0.
    Contended,
    /// Thread `t` uses key `t`.
    Spread,
}

impl Keys {
    fn name(self) -> &'static str {
        match self {
            Self::Contended => "contended",
            Self::Spread => "spread",
        }
    }

    fn pick(self, keys: &[String], thread: usize) -> &str {
        match self {
            Self::Contended => &keys[0],
            Self::Spread => &keys[thread],
        }
    }
}

/// One key per thread for each state a key can be in.
struct KeySets {
    unknown: Vec<String>,
    healthy: Vec<String>,
    backing_off: Vec<String>,
}

impl KeySets {
    fn new() -> Self {
        let set = |state: &str| {
            (0..MAX_THREADS)
                .map(|thread| format!("{state}-{thread}.example.com"))
                .collect()
        };
        Self {
            unknown: set("unknown"),
            healthy: set("healthy"),
            backing_off: set("backoff"),
        }
    }
}

/// Runs `operation` `iterations` times on each of `threads` threads at once and
/// returns the mean time one thread spent.
fn per_thread<F>(threads: usize, iterations: u64, operation: F) -> Duration
where
    F: Fn(usize) + Sync,
{
    let barrier = Barrier::new(threads);
    let total: Duration = thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let (barrier, operation) = (&barrier, &operation);
                scope.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iterations {
                        operation(thread);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a bench thread panicked"))
            .sum()
    });
    total / u32::try_from(threads).expect("a few threads")
}

/// Any fixed seed: the control's hasher is built on each thread's own stack.
const CONTROL_SEED: u64 = 0x5EED;

/// The operations measured, by name; each gets the registry, the floor, the key sets
/// and the thread's choice of keys.
type Operation = fn(&BackoffRegistry, &Floor, &KeySets, Keys, usize);

const OPERATIONS: [(&str, Operation); 8] = [
    ("unshared_control", |_, _, keys, pick, t| {
        let hasher = foldhash::fast::FixedState::with_seed(CONTROL_SEED);
        black_box(hasher.hash_one(black_box(pick.pick(&keys.healthy, t))));
    }),
    ("floor_hit", |_, floor, keys, pick, t| {
        black_box(floor.get(black_box(pick.pick(&keys.healthy, t))));
    }),
    ("should_backoff_unknown", |registry, _, keys, pick, t| {
        black_box(registry.should_backoff(black_box(pick.pick(&keys.unknown, t))));
    }),
    ("should_backoff_healthy", |registry, _, keys, pick, t| {
        black_box(registry.should_backoff(black_box(pick.pick(&keys.healthy, t))));
    }),
    ("should_backoff_in_backoff", |registry, _, keys, pick, t| {
        black_box(registry.should_backoff(black_box(pick.pick(&keys.backing_off, t))));
    }),
    ("stats_healthy", |registry, _, keys, pick, t| {
        black_box(registry.stats(black_box(pick.pick(&keys.healthy, t))));
    }),
    ("record_failure_tracked", |registry, _, keys, pick, t| {
        registry.record_failure(black_box(pick.pick(&keys.backing_off, t)));
    }),
    ("check_clear_untracked", |registry, _, keys, pick, t| {
        let key = pick.pick(&keys.unknown, t);
        black_box(registry.check(black_box(key)).is_ok());
        registry.clear(black_box(key));
    }),
];

fn shared_registry(c: &mut Criterion) {
    let keys = KeySets::new();
    let registry = common::registry(url_backoff_registry::DEFAULT_MAX_KEYS);
    for key in &keys.healthy {
        registry.record_failure(key);
    }
    for key in &keys.backing_off {
        common::trip(&registry, key);
    }
    let floor = Floor::new(keys.healthy.iter().map(String::as_str));

    let mut group = c.benchmark_group("threads");
    group.throughput(Throughput::Elements(1));
    for (name, operation) in OPERATIONS {
        for threads in THREADS {
            // On one thread, contended and spread are the same run.
            let modes: &[Keys] = match threads {
                1 => &[Keys::Contended],
                _ => &[Keys::Contended, Keys::Spread],
            };
            for &mode in modes {
                let label = match threads {
                    1 => "1".to_owned(),
                    _ => format!("{}-{threads}", mode.name()),
                };
                group.bench_function(BenchmarkId::new(name, label), |b| {
                    b.iter_custom(|iterations| {
                        per_thread(threads, iterations, |thread| {
                            operation(&registry, &floor, &keys, mode, thread)
                        })
                    })
                });
            }
        }
    }
    group.finish();
    assert_eq!(
        registry.len(),
        2 * MAX_THREADS,
        "the benches created no key"
    );
}

criterion_group!(benches, shared_registry);
criterion_main!(benches);
