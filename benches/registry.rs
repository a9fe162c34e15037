//! Single-threaded cost of the registry's per-call operations.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use url_backoff_registry::{BackoffRegistry, ManualClock, Rule};

fn registry() -> BackoffRegistry {
    BackoffRegistry::builder()
        .clock(ManualClock::new())
        .build()
        .expect("default settings are valid")
}

fn queries(c: &mut Criterion) {
    let registry = registry();
    registry.record_failure("healthy.example");
    registry
        .set_rule("tripped.example", Rule::default().backoff(Duration::MAX))
        .expect("valid rule");
    for _ in 0..3 {
        registry.record_failure("tripped.example");
    }

    let mut group = c.benchmark_group("should_backoff");
    group.throughput(Throughput::Elements(1));
    for key in ["unknown.example", "healthy.example", "tripped.example"] {
        group.bench_function(key, |b| {
            b.iter(|| registry.should_backoff(black_box(key)));
        });
    }
    group.finish();
}

fn updates(c: &mut Criterion) {
    let registry = registry();
    let mut group = c.benchmark_group("updates");
    group.throughput(Throughput::Elements(1));
    group.bench_function("record_failure", |b| {
        b.iter(|| registry.record_failure(black_box("failing.example")));
    });
    group.bench_function("clear_untracked", |b| {
        b.iter(|| registry.clear(black_box("healthy.example")));
    });
    group.finish();
}

criterion_group!(benches, queries, updates);
criterion_main!(benches);
