//! What the layer adds to a request to a healthy host: the same `ServiceBuilder`
//! pipeline around a trivial in-process service, with and without `BackoffLayer`, for
//! authorities that are already canonical and one that needs normalising.
//!
//! The floor and the recloser and failsafe breakers run in the same group, so that
//! "the layer costs less than a breaker call" is a comparison within one run.
//!
//! Run: `cargo bench --bench layer`.

mod common;

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use http::{Request, Response, Uri};
use tower::ServiceBuilder;
use url_backoff_registry::{authority_key, BackoffLayer};

use common::peers::{self, Floor};

/// The URIs requested, by name. All three hosts are healthy and untracked, the state
/// almost every request finds.
const URIS: [(&str, &str); 3] = [
    ("canonical_host", "http://api.example.com/x"),
    ("canonical_ip_port", "http://127.0.0.1:8080/x"),
    ("normalising", "http://user@API.Example.COM:80/x"),
];

/// The response future of the trivial service.
type Answer = Ready<Result<Response<()>, Infallible>>;

/// The trivial service the pipelines wrap: answers 200 at once and allocates nothing.
fn answer(_request: Request<()>) -> Answer {
    ready(Ok(Response::new(())))
}

fn request(uri: &str) -> Request<()> {
    Request::get(uri).body(()).expect("a valid URI")
}

fn layer_overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("layer");
    group.throughput(Throughput::Elements(1));

    // The key the canonical host request looks up, in a map as empty as the registry.
    let floor = Floor::new([]);
    group.bench_function("floor_miss", |b| {
        b.iter(|| floor.get(black_box("api.example.com")))
    });
    let recloser = peers::recloser();
    group.bench_function("recloser_closed", |b| {
        b.iter(|| peers::recloser_call(black_box(&recloser)))
    });
    let failsafe = peers::failsafe();
    group.bench_function("failsafe_closed", |b| {
        b.iter(|| peers::failsafe_call(black_box(&failsafe)))
    });

    let registry = common::registry(url_backoff_registry::DEFAULT_MAX_KEYS);

    // Parts of the layer's work, for reading the overhead: deriving the key, and the
    // registry handle each response future holds.
    for (name, uri) in URIS {
        let uri: Uri = uri.parse().expect("a valid URI");
        group.bench_function(BenchmarkId::new("authority_key", name), |b| {
            b.iter(|| authority_key(black_box(&uri)).map(|key| key.len()))
        });
    }
    group.bench_function("registry_clone_drop", |b| {
        b.iter(|| drop(black_box(registry.clone())))
    });

    let mut without = ServiceBuilder::new().service(tower::service_fn(answer));
    let mut with = ServiceBuilder::new()
        .layer(BackoffLayer::new(registry.clone()))
        .service(tower::service_fn(answer));

    // Requests are cloned outside the timed part; both pipelines pay the same drop.
    for (name, uri) in URIS {
        let template = request(uri);
        group.bench_function(BenchmarkId::new("without_layer", name), |b| {
            b.iter_batched(
                || template.clone(),
                |request| common::drive(&mut without, request),
                BatchSize::SmallInput,
            )
        });
        group.bench_function(BenchmarkId::new("with_layer", name), |b| {
            b.iter_batched(
                || template.clone(),
                |request| common::drive(&mut with, request),
                BatchSize::SmallInput,
            )
        });
    }
    assert!(
        registry.is_empty(),
        "successes to untracked hosts create no key"
    );
    group.finish();
}

criterion_group!(benches, layer_overhead);
criterion_main!(benches);
