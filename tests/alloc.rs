//! The healthy path allocates nothing: a request through the layer to a healthy host
//! whose authority is already canonical, and the success path on an untracked key.
//!
//! Allocations are counted by the `allocation-counter` crate's global allocator, which
//! counts per thread, so the test harness and tests running in parallel never show up
//! in a measurement. (The crate forbids `unsafe_code` in every target, so the counting
//! allocator comes from that small dev-dependency instead of being written here.)
//! Every request is built before the measurement starts.

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use allocation_counter::{measure, AllocationInfo};
use http::{Request, Response, StatusCode};
use tower::{Service, ServiceBuilder};
use url_backoff_registry::{BackoffLayer, BackoffRegistry, ManualClock, Stats};

/// Canonical authorities: their keys borrow from the URI.
const CANONICAL: [(&str, &str); 2] = [
    ("http://api.example.com/items?page=2", "api.example.com"),
    ("http://127.0.0.1:8080/items", "127.0.0.1:8080"),
];

/// The inner service: answers 200 at once.
fn answer(_request: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
    ready(Ok(Response::new(())))
}

fn request(uri: &str) -> Request<()> {
    Request::get(uri).body(()).unwrap()
}

fn registry() -> BackoffRegistry {
    BackoffRegistry::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

/// Sends `request` through `service`, polling with a no-op waker, and returns the
/// response's status and what this thread allocated from `poll_ready` until the
/// response future completed.
fn send<S>(service: &mut S, request: Request<()>) -> (StatusCode, AllocationInfo)
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: std::fmt::Debug,
{
    let mut status = None;
    let info = measure(|| {
        let mut cx = Context::from_waker(Waker::noop());
        assert!(service.poll_ready(&mut cx).is_ready());
        let future = pin!(service.call(request));
        let Poll::Ready(response) = future.poll(&mut cx) else {
            panic!("the inner service answers at once");
        };
        status = Some(response.unwrap().status());
    });
    (status.unwrap(), info)
}

#[test]
fn the_counter_counts_on_this_thread() {
    let info = measure(|| drop(std::hint::black_box(vec![0_u8; 24])));
    assert_eq!((info.count_total, info.bytes_total), (1, 24));
}

#[test]
fn the_inner_service_allocates_nothing() {
    let mut service = tower::service_fn(answer);
    for (uri, _) in CANONICAL {
        let (status, info) = send(&mut service, request(uri));
        assert_eq!(status, StatusCode::OK);
        assert_eq!((info.count_total, info.bytes_total), (0, 0), "{uri}");
    }
}

#[test]
fn a_request_to_an_untracked_healthy_host_allocates_nothing() {
    let registry = registry();
    let mut service = ServiceBuilder::new()
        .layer(BackoffLayer::new(registry.clone()))
        .service(tower::service_fn(answer));

    for round in 0..3 {
        for (uri, _) in CANONICAL {
            let (status, info) = send(&mut service, request(uri));
            assert_eq!(status, StatusCode::OK);
            assert_eq!(
                (info.count_total, info.bytes_total),
                (0, 0),
                "{uri}, round {round}"
            );
        }
    }
    assert_eq!(registry.len(), 0);
}

#[test]
fn a_request_to_a_tracked_but_healthy_host_allocates_nothing() {
    let registry = registry();
    let mut service = ServiceBuilder::new()
        .layer(BackoffLayer::new(registry.clone()))
        .service(tower::service_fn(answer));

    for round in 0..3 {
        for (uri, key) in CANONICAL {
            registry.record_failure(key);
            registry.record_failure(key);
            let stats = registry.stats(key);
            assert_eq!((stats.failures_in_window, stats.in_backoff), (2, false));

            let (status, info) = send(&mut service, request(uri));
            assert_eq!(status, StatusCode::OK);
            assert_eq!(
                (info.count_total, info.bytes_total),
                (0, 0),
                "{uri}, round {round}"
            );
            // The success cleared the key; dropping its state only frees memory.
            assert_eq!(registry.stats(key), Stats::default());
        }
    }
    assert_eq!(registry.len(), 0);
}

/// The lock a call takes cannot be seen from outside the registry; what can be seen is
/// that the map is left as it was: no entry is created, nothing is allocated.
#[test]
fn the_success_path_on_an_untracked_key_creates_no_entry_and_allocates_nothing() {
    let registry = registry();
    registry.record_failure("other.example.com");
    let key = "api.example.com";

    for round in 0..3 {
        let info = measure(|| {
            assert!(registry.check(key).is_ok());
            registry.clear(key);
        });
        assert_eq!(
            (info.count_total, info.bytes_total),
            (0, 0),
            "round {round}"
        );
        assert_eq!(registry.len(), 1);
        assert_eq!(registry.keys(), ["other.example.com"]);
        assert_eq!(registry.stats(key), Stats::default());
    }
}

/// Control: an authority that needs normalising does allocate, so the zeros above are
/// not a counter that never counts.
#[test]
fn a_request_whose_authority_needs_normalising_allocates_the_lower_cased_host() {
    let registry = registry();
    let mut service = ServiceBuilder::new()
        .layer(BackoffLayer::new(registry.clone()))
        .service(tower::service_fn(answer));

    // Userinfo and the default port are dropped by slicing; lower-casing the host
    // copies it into a `String`: one allocation of 15 bytes.
    let (status, info) = send(&mut service, request("http://user@API.Example.COM:80/x"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!((info.count_total, info.bytes_total), (1, 15));
    assert_eq!(registry.len(), 0);

    // The service remembers the last authority it normalised: the next request to the
    // same authority reuses the key and allocates nothing.
    let (status, info) = send(&mut service, request("http://user@API.Example.COM:80/y"));
    assert_eq!((status, info.count_total), (StatusCode::OK, 0));
}

/// Control: a canonical key too long to keep inline is copied to the heap once per
/// request.
#[test]
fn a_request_with_a_very_long_canonical_authority_allocates_its_key_once() {
    let registry = registry();
    let mut service = ServiceBuilder::new()
        .layer(BackoffLayer::new(registry.clone()))
        .service(tower::service_fn(answer));

    let host = "a-service-with-a-rather-long-name.eu-west-1a.internal.example.com";
    assert_eq!(host.len(), 65);
    // Too long for the service's memory of the last authority, too: every request
    // derives the key again (borrowing it) and copies it into its response future.
    for path in ["x", "y"] {
        let (status, info) = send(&mut service, request(&format!("http://{host}/{path}")));
        assert_eq!(status, StatusCode::OK);
        assert_eq!((info.count_total, info.bytes_total), (1, 65));
    }
    assert_eq!(registry.len(), 0);

    // Up to 40 bytes, host and port together, a key stays inline.
    let host = "payments.default.svc.cluster.local:8080";
    assert_eq!(host.len(), 39);
    let (status, info) = send(&mut service, request(&format!("http://{host}/x")));
    assert_eq!((status, info.count_total), (StatusCode::OK, 0));
}

#[test]
fn ipv6_and_explicit_ports_allocate_nothing_and_neither_does_the_host_fallback() {
    let registry = registry();
    let layer = BackoffLayer::new(registry.clone()).host_fallback(true);
    let mut service = ServiceBuilder::new().layer(layer).service_fn(answer);

    for uri in ["http://[::1]:3000/", "https://api.example.com:8443/items"] {
        for _ in 0..10 {
            let mut request = request(uri);
            // The URI has an authority, so the `Host` header is never read.
            request
                .headers_mut()
                .insert("host", "other.example.com".parse().unwrap());
            let (status, info) = send(&mut service, request);
            assert_eq!((status, info.count_total), (StatusCode::OK, 0), "{uri}");
        }
    }
    assert!(registry.is_empty());
}

#[test]
fn should_backoff_on_a_key_in_backoff_allocates_nothing() {
    let registry = registry();
    let key = "api.example.com";
    for _ in 0..3 {
        registry.record_failure(key);
    }

    let mut in_backoff = false;
    let info = measure(|| in_backoff = registry.should_backoff(key));
    assert!(in_backoff);
    assert_eq!((info.count_total, info.bytes_total), (0, 0));

    // `check` describes the refusal, and that does copy the key.
    let info = measure(|| assert!(registry.check(key).is_err()));
    assert_eq!(info.count_total, 1);
}

/// The service's memory of the last authority is inline: long authorities whose keys
/// are short, met in turn so that the memory keeps changing, allocate nothing.
#[test]
fn alternating_hosts_with_long_authorities_allocate_nothing() {
    let registry = registry();
    let mut service = ServiceBuilder::new()
        .layer(BackoffLayer::new(registry.clone()))
        .service(tower::service_fn(answer));

    // Keys of 38 and 15 bytes, borrowed from the URIs; authorities of 42 and 57 bytes,
    // longer than a key kept inline but within what the memory holds.
    let uris = [
        "https://payments-api.default.svc.cluster.local:443/charge",
        "http://svc-user:0123456789abcdef0123456789abcdef@api.example.com/items",
    ];
    for _round in 0..3 {
        for uri in uris {
            let (status, info) = send(&mut service, request(uri));
            assert_eq!(status, StatusCode::OK);
            assert_eq!((info.count_total, info.bytes_total), (0, 0), "{uri}");
        }
    }
    assert_eq!(registry.len(), 0);
}
