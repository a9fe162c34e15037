//! Single-threaded cost of the registry's operations, side by side with the floor (a
//! bare map lookup with the registry's hasher) and the peers, all in one group so that
//! every ratio comes from one run.
//!
//! Run: `cargo bench --bench registry`; `benches/summarise.py` turns the results into
//! the tables of `BENCHMARKS.md`.

mod common;

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use common::peers::{self, Floor, NaiveRegistry};
use common::{BACKING_OFF, HEALTHY, UNKNOWN};

fn registry_and_peers(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry");
    group.throughput(Throughput::Elements(1));

    // The floor holds the same keys the registry tracks.
    let floor = Floor::new([HEALTHY, BACKING_OFF]);
    group.bench_function("floor_miss", |b| b.iter(|| floor.get(black_box(UNKNOWN))));
    group.bench_function("floor_hit", |b| b.iter(|| floor.get(black_box(HEALTHY))));

    // A what-if, not a floor: a plain map with no lock at all.
    let unlocked: HashMap<String, u64, foldhash::fast::RandomState> =
        [(HEALTHY.to_owned(), 0), (BACKING_OFF.to_owned(), 1)]
            .into_iter()
            .collect();
    group.bench_function("whatif_unlocked_foldhash_hit", |b| {
        b.iter(|| unlocked.get(black_box(HEALTHY)).copied())
    });

    let registry = common::registry_with_known_keys();
    let queries = [
        ("should_backoff_unknown", UNKNOWN),
        ("should_backoff_healthy", HEALTHY),
        ("should_backoff_in_backoff", BACKING_OFF),
    ];
    for (name, key) in queries {
        group.bench_function(name, |b| b.iter(|| registry.should_backoff(black_box(key))));
    }
    group.bench_function("stats_healthy", |b| {
        b.iter(|| registry.stats(black_box(HEALTHY)))
    });

    // With the clock standing still, the key stays in backoff and keeps `threshold`
    // failures: each call reads the clock, looks up the key's rule, and replaces its
    // oldest failure.
    group.bench_function("record_failure_tracked", |b| {
        b.iter(|| registry.record_failure(black_box(BACKING_OFF)))
    });

    // What a caller does after a successful request to a host it never saw fail.
    group.bench_function("check_clear_untracked", |b| {
        b.iter(|| {
            let admitted = registry.check(black_box(UNKNOWN)).is_ok();
            registry.clear(black_box(UNKNOWN));
            admitted
        })
    });
    assert_eq!(registry.len(), 2, "the benches above created no key");

    peer_benches(&mut group);
    group.finish();
}

fn peer_benches(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let recloser = peers::recloser();
    group.bench_function("recloser_closed", |b| {
        b.iter(|| peers::recloser_call(black_box(&recloser)))
    });

    let failsafe = peers::failsafe();
    group.bench_function("failsafe_closed", |b| {
        b.iter(|| peers::failsafe_call(black_box(&failsafe)))
    });

    let governor = peers::governor();
    let key = HEALTHY.to_owned();
    group.bench_function("governor_check_key", |b| {
        b.iter(|| governor.check_key(black_box(&key)).is_ok())
    });

    let naive = NaiveRegistry::new();
    naive.record_failure(HEALTHY);
    group.bench_function("naive_should_backoff_unknown", |b| {
        b.iter(|| naive.should_backoff(black_box(UNKNOWN)))
    });
    group.bench_function("naive_should_backoff_healthy", |b| {
        b.iter(|| naive.should_backoff(black_box(HEALTHY)))
    });
    group.bench_function("naive_record_failure_tracked", |b| {
        b.iter(|| naive.record_failure(black_box(BACKING_OFF)))
    });
}

criterion_group!(benches, registry_and_peers);
criterion_main!(benches);
