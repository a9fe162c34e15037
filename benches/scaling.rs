//! `should_backoff` as the registry grows: 1 k, 100 k and 1 M tracked keys, each with
//! one failure, against the floor map holding the same keys.
//!
//! Four query patterns, each cycling through a fixed list of keys:
//! - `few`: 8 tracked keys spread over the map, the busy hosts among many tracked
//!   ones: a lookup's own cost once its memory is warm;
//! - `hot`: the same 1,000 tracked keys at every size, spread over the whole map, so
//!   only the map's size changes, not the working set;
//! - `all`: every tracked key in a shuffled order, so at 1 M keys nearly every query
//!   misses the CPU caches (the floor shows how much of that any map pays);
//! - `unknown`: 1,000 keys the map does not hold.
//!
//! Run: `cargo bench --bench scaling`. Building the 1 M-key maps takes a few seconds.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use common::peers::Floor;

const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];
const QUERIES: usize = 1_000;

/// Cycles through `keys`, answering each with `query`.
fn cycle<'a>(keys: &'a [String], query: impl Fn(&str) -> bool + 'a) -> impl FnMut() -> bool + 'a {
    let mut next = 0;
    move || {
        let key = &keys[next];
        next = if next + 1 == keys.len() { 0 } else { next + 1 };
        query(black_box(key))
    }
}

fn scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("scaling");
    group.throughput(Throughput::Elements(1));

    for size in SIZES {
        let tracked = common::hosts(0, size);
        let registry = common::registry(2 * size);
        for key in &tracked {
            registry.record_failure(key);
        }
        assert_eq!(registry.len(), size);
        let floor = Floor::new(tracked.iter().map(String::as_str));

        let step = size / QUERIES;
        let hot: Vec<String> = tracked.iter().step_by(step).cloned().collect();
        // A handful of busy hosts among many tracked ones: the cost of a lookup
        // itself, once its cache lines and pages are warm.
        let few: Vec<String> = tracked.iter().step_by(size / 8).cloned().collect();
        let unknown = common::hosts(size, QUERIES);
        let mut all = tracked;
        common::shuffle(&mut all);

        let patterns = [
            ("few", &few),
            ("hot", &hot),
            ("all", &all),
            ("unknown", &unknown),
        ];
        for (pattern, keys) in patterns {
            let floor_id = BenchmarkId::new(format!("floor_{pattern}"), size);
            group.bench_function(floor_id, |b| {
                b.iter(cycle(keys, |key| floor.get(key).is_some()))
            });
            let registry_id = BenchmarkId::new(format!("should_backoff_{pattern}"), size);
            group.bench_function(registry_id, |b| {
                b.iter(cycle(keys, |key| registry.should_backoff(key)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, scaling);
criterion_main!(benches);
