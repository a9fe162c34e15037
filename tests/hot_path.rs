//! The hot path: a request to a healthy host with a canonical authority allocates
//! nothing inside the layer, with the default extractor and classifier.

use std::convert::Infallible;
use std::future::{ready, Future};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::{Request, Response, StatusCode};
use tower::{Layer, Service};
use url_backoff_registry::{BackoffLayer, BackoffRegistry, ManualClock};

/// Calls `service` with each request and polls the response future to completion,
/// returning how many allocations the calls and polls made on this thread.
fn allocations_for<S>(service: &mut S, requests: Vec<Request<()>>) -> u64
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: std::fmt::Debug,
{
    let mut context = Context::from_waker(Waker::noop());
    let mut total = 0;
    for request in requests {
        let mut response = None;
        let info = allocation_counter::measure(|| {
            assert!(service.poll_ready(&mut context).is_ready());
            let mut future = pin!(service.call(request));
            let Poll::Ready(result) = future.as_mut().poll(&mut context) else {
                panic!("the inner service answers at once");
            };
            response = Some(result);
        });
        assert_eq!(response.unwrap().unwrap().status(), StatusCode::OK);
        total += info.count_total;
    }
    total
}

fn requests(uri: &str, count: usize) -> Vec<Request<()>> {
    (0..count)
        .map(|_| Request::get(uri).body(()).unwrap())
        .collect()
}

fn ok_service() -> impl Service<Request<()>, Response = Response<()>, Error = Infallible> + Clone {
    tower::service_fn(|_: Request<()>| ready(Ok::<_, Infallible>(Response::new(()))))
}

#[test]
fn a_healthy_host_costs_no_allocation() {
    let registry = BackoffRegistry::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    // Other keys exist, so the map is not trivially empty.
    registry.record_failure("other.example.com");
    let mut service = BackoffLayer::new(registry.clone()).layer(ok_service());

    let uris = [
        "http://api.example.com/items?page=2",
        "https://api.example.com:8443/items",
        "http://127.0.0.1:8080/",
        "http://[::1]:3000/",
    ];
    for uri in uris {
        assert_eq!(
            allocations_for(&mut service, requests(uri, 100)),
            0,
            "{uri}"
        );
    }
    assert_eq!(registry.keys(), ["other.example.com"]);
}

#[test]
fn the_host_fallback_costs_nothing_when_the_uri_has_an_authority() {
    let registry = BackoffRegistry::new();
    let layer = BackoffLayer::new(registry).host_fallback(true);
    let mut service = layer.layer(ok_service());

    let mut requests = requests("http://api.example.com/", 100);
    for request in &mut requests {
        request
            .headers_mut()
            .insert("host", "other.example.com".parse().unwrap());
    }
    assert_eq!(allocations_for(&mut service, requests), 0);
}

#[test]
fn the_counter_sees_allocations() {
    // A key that needs rewriting is copied: the counter must notice.
    let registry = BackoffRegistry::new();
    let mut service = BackoffLayer::new(registry).layer(ok_service());
    let count = allocations_for(&mut service, requests("http://API.Example.com/", 10));
    assert_eq!(count, 10);
}
