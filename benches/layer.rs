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
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use http::{Request, Response, Uri};
use tower::{BoxError, Service, ServiceBuilder};
use url_backoff_registry::{authority_key, BackoffLayer};

use common::peers::{self, Floor};

/// The URIs requested, by name. All three hosts are healthy and untracked, the state
/// almost every request finds. A URI without an authority is not tracked at all: it
/// shows what wrapping the inner service costs by itself.
const URIS: [(&str, &str); 4] = [
    ("canonical_host", "http://api.example.com/x"),
    ("canonical_ip_port", "http://127.0.0.1:8080/x"),
    ("normalising", "http://user@API.Example.COM:80/x"),
    ("no_authority", "/x"),
];

/// The response future of the trivial service.
type Answer = Ready<Result<Response<()>, Infallible>>;

/// The trivial service the pipelines wrap: answers 200 at once and allocates nothing.
fn answer(_request: Request<()>) -> Answer {
    ready(Ok(Response::new(())))
}

/// Looks at a request's authority out of line and passes the request on unchanged.
fn inspect(request: Request<()>) -> Request<()> {
    look_at(&request);
    request
}

#[inline(never)]
fn look_at(request: &Request<()>) {
    black_box(
        request
            .uri()
            .authority()
            .map(|authority| authority.as_str().len()),
    );
}

fn request(uri: &str) -> Request<()> {
    Request::get(uri).body(()).expect("a valid URI")
}

/// Sends `iterations` copies of `template` through `service` and returns the time
/// spent sending them.
///
/// Copies are made outside the timed part, a batch at a time into one reused buffer
/// (so no fresh memory is touched while timing), and each response is dropped at once.
/// Both pipelines pay the same for moving a request out of the buffer and dropping it.
fn send_all<S>(service: &mut S, template: &Request<()>, iterations: u64) -> Duration
where
    S: Service<Request<()>>,
{
    const BATCH: u64 = 4_096;
    let mut batch = Vec::with_capacity(BATCH as usize);
    let mut elapsed = Duration::ZERO;
    let mut left = iterations;
    while left > 0 {
        let size = left.min(BATCH);
        batch.extend((0..size).map(|_| template.clone()));
        let start = Instant::now();
        for request in batch.drain(..) {
            let _ = black_box(common::drive(service, request));
        }
        elapsed += start.elapsed();
        left -= size;
    }
    elapsed
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

    // The least any layer costs that turns the inner error into a `BoxError`, as this
    // one does: a pipeline with only `map_err`.
    let mut map_err_only = ServiceBuilder::new()
        .map_err(|never: Infallible| -> BoxError { match never {} })
        .service(tower::service_fn(answer));
    let template = request(URIS[0].1);
    group.bench_function("map_err_layer", |b| {
        b.iter_custom(|iterations| send_all(&mut map_err_only, &template, iterations))
    });

    // The least a layer costs that hands the request to a function of its own before
    // passing it on, as this one does to find the key.
    let mut inspect_only = ServiceBuilder::new()
        .map_request(inspect)
        .service(tower::service_fn(answer));
    group.bench_function("inspecting_layer", |b| {
        b.iter_custom(|iterations| send_all(&mut inspect_only, &template, iterations))
    });

    // The breakers as they would sit in the same pipeline, one unkeyed breaker each,
    // with their errors boxed as this layer's are: what they add per request is what
    // this layer's overhead compares with on equal terms.
    let mut recloser_pipeline = ServiceBuilder::new()
        .map_err(|_: recloser::Error<Infallible>| -> BoxError { "rejected".into() })
        .layer_fn(peers::RecloserService::new)
        .service(tower::service_fn(answer));
    group.bench_function("recloser_pipeline", |b| {
        b.iter_custom(|iterations| send_all(&mut recloser_pipeline, &template, iterations))
    });
    let mut failsafe_pipeline = ServiceBuilder::new()
        .map_err(|_: failsafe::Error<Infallible>| -> BoxError { "rejected".into() })
        .layer_fn(peers::FailsafeService::new)
        .service(tower::service_fn(answer));
    group.bench_function("failsafe_pipeline", |b| {
        b.iter_custom(|iterations| send_all(&mut failsafe_pipeline, &template, iterations))
    });

    for (name, uri) in URIS {
        let template = request(uri);
        group.bench_function(BenchmarkId::new("without_layer", name), |b| {
            b.iter_custom(|iterations| send_all(&mut without, &template, iterations))
        });
        group.bench_function(BenchmarkId::new("with_layer", name), |b| {
            b.iter_custom(|iterations| send_all(&mut with, &template, iterations))
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
