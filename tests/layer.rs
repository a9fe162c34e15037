//! `BackoffLayer` around an in-process mock service.

use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio_test::{assert_pending, assert_ready_err, assert_ready_ok};
use tower::{BoxError, Layer, Service, ServiceExt};
use tower_test::mock;
use url_backoff_registry::{BackoffError, BackoffLayer, BackoffRegistry, ManualClock};

type Mock = mock::Mock<Request<()>, Response<()>>;
type Handle = mock::Handle<Request<()>, Response<()>>;
type Guarded = url_backoff_registry::BackoffService<Mock>;

const URI: &str = "http://api.example.com/items";
const KEY: &str = "api.example.com";

fn setup(threshold: u32) -> (Guarded, Handle, BackoffRegistry, ManualClock) {
    let clock = ManualClock::new();
    let registry = BackoffRegistry::builder()
        .threshold(threshold)
        .backoff(Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .unwrap();
    let (mock, handle) = mock::pair();
    let service = BackoffLayer::new(registry.clone()).layer(mock);
    (service, handle, registry, clock)
}

fn request(uri: &str) -> Request<()> {
    Request::get(uri).body(()).unwrap()
}

fn response(status: StatusCode) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = status;
    response
}

/// Sends one request through `service` and answers it with `status` from the mock.
async fn exchange(
    service: &mut Guarded,
    handle: &mut Handle,
    uri: &str,
    status: StatusCode,
) -> Result<Response<()>, BoxError> {
    let future = service.ready().await.unwrap().call(request(uri));
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_response(response(status));
    future.await
}

#[tokio::test]
async fn the_key_is_the_normalised_authority() {
    let (mut service, mut handle, registry, _clock) = setup(10);
    let uri = "https://user:secret@API.Example.com:443/x?token=1";
    exchange(&mut service, &mut handle, uri, StatusCode::BAD_GATEWAY)
        .await
        .unwrap();

    assert_eq!(registry.keys(), [KEY]);
    assert_eq!(registry.stats(KEY).failures_in_window, 1);
}

#[tokio::test]
async fn server_errors_and_429_count_as_failures() {
    let (mut service, mut handle, registry, _clock) = setup(10);
    let failing = [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::GATEWAY_TIMEOUT,
        StatusCode::TOO_MANY_REQUESTS,
    ];
    for (count, status) in failing.into_iter().enumerate() {
        let response = exchange(&mut service, &mut handle, URI, status)
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(registry.stats(KEY).failures_in_window, count + 1);
    }
}

#[tokio::test]
async fn any_other_status_clears_the_key() {
    for status in [
        StatusCode::OK,
        StatusCode::NOT_FOUND,
        StatusCode::MOVED_PERMANENTLY,
    ] {
        let (mut service, mut handle, registry, _clock) = setup(10);
        registry.record_failure(KEY);
        registry.record_failure(KEY);

        exchange(&mut service, &mut handle, URI, status)
            .await
            .unwrap();
        assert_eq!(registry.stats(KEY).failures_in_window, 0, "{status}");
        assert!(registry.is_empty());
    }
}

#[tokio::test]
async fn an_inner_error_counts_as_a_failure_and_is_passed_on() {
    let (mut service, mut handle, registry, _clock) = setup(10);
    let future = service.ready().await.unwrap().call(request(URI));
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_error("connection reset");

    let error = future.await.unwrap_err();
    assert_eq!(error.to_string(), "connection reset");
    assert!(error.downcast_ref::<BackoffError>().is_none());
    assert_eq!(registry.stats(KEY).failures_in_window, 1);
}

#[tokio::test]
async fn in_backoff_the_inner_service_is_not_called() {
    let (mut service, mut handle, registry, clock) = setup(2);
    for _ in 0..2 {
        exchange(
            &mut service,
            &mut handle,
            URI,
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await
        .unwrap();
    }
    let until = clock.now() + Duration::from_secs(60);
    clock.advance(Duration::from_secs(15));

    handle.allow(1);
    let error = service.call(request(URI)).await.unwrap_err();

    let backoff = error.downcast_ref::<BackoffError>().unwrap();
    assert_eq!(backoff.key(), KEY);
    assert_eq!(backoff.until(), until);
    assert_eq!(backoff.retry_after(), Duration::from_secs(45));
    assert_eq!(registry.stats(KEY).failures_in_window, 2);

    // The mock saw no request: the next thing it sees is the one after the backoff.
    clock.advance(Duration::from_secs(45));
    let future = service.ready().await.unwrap().call(request(URI));
    let (seen, reply) = handle.next_request().await.unwrap();
    assert_eq!(seen.uri(), URI);
    reply.send_response(response(StatusCode::OK));
    assert_eq!(future.await.unwrap().status(), StatusCode::OK);
    assert!(!registry.should_backoff(KEY));
    assert!(registry.is_empty());
}

#[tokio::test]
async fn requests_without_an_authority_pass_through_untracked() {
    let (mut service, mut handle, registry, _clock) = setup(1);
    for _ in 0..3 {
        let response = exchange(&mut service, &mut handle, "/local", StatusCode::BAD_GATEWAY)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    }
    assert!(registry.is_empty());
}

#[tokio::test]
async fn a_dropped_response_future_records_nothing() {
    let (mut service, mut handle, registry, _clock) = setup(1);
    let future = service.ready().await.unwrap().call(request(URI));
    let (_, reply) = handle.next_request().await.unwrap();
    drop(future);
    reply.send_error("too late");

    assert!(registry.is_empty());
}

#[tokio::test]
async fn poll_ready_is_delegated_to_the_inner_service() {
    let (service, mut handle, _registry, _clock) = setup(1);
    let mut service = mock::Spawn::new(service);

    handle.allow(0);
    assert_pending!(service.poll_ready());

    handle.allow(1);
    assert_ready_ok!(service.poll_ready());

    handle.send_error("inner not ready");
    let error = assert_ready_err!(service.poll_ready());
    assert_eq!(error.to_string(), "inner not ready");
}

#[tokio::test]
async fn clones_share_one_registry() {
    let (service, mut handle, registry, _clock) = setup(2);
    let mut first = service.clone();
    let mut second = service;
    exchange(&mut first, &mut handle, URI, StatusCode::BAD_GATEWAY)
        .await
        .unwrap();
    exchange(&mut second, &mut handle, URI, StatusCode::BAD_GATEWAY)
        .await
        .unwrap();

    assert!(registry.should_backoff(KEY));
    handle.allow(1);
    let error = first.call(request(URI)).await.unwrap_err();
    assert!(error.is::<BackoffError>());
}

#[tokio::test]
async fn a_nested_backoff_layer_refusing_counts_as_nothing_outside() {
    let clock = ManualClock::new();
    let registry = |threshold| {
        BackoffRegistry::builder()
            .threshold(threshold)
            .clock(clock.clone())
            .build()
            .unwrap()
    };
    let (outer_registry, inner_registry) = (registry(1), registry(1));
    inner_registry.record_failure(KEY);

    let inner =
        tower::service_fn(|_: Request<()>| async { Ok::<_, BoxError>(response(StatusCode::OK)) });
    let mut service = tower::ServiceBuilder::new()
        .layer(BackoffLayer::new(outer_registry.clone()))
        .layer(BackoffLayer::new(inner_registry))
        .service(inner);

    let error = service
        .ready()
        .await
        .unwrap()
        .call(request(URI))
        .await
        .unwrap_err();
    assert!(error.is::<BackoffError>());
    assert!(outer_registry.is_empty());
}

#[tokio::test]
async fn a_success_that_finishes_after_a_trip_does_not_end_the_backoff() {
    let (mut service, mut handle, registry, clock) = setup(2);
    let slow = service.ready().await.unwrap().call(request(URI));
    let (_, slow_reply) = handle.next_request().await.unwrap();

    for _ in 0..2 {
        exchange(
            &mut service,
            &mut handle,
            URI,
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await
        .unwrap();
    }
    let until = clock.now() + Duration::from_secs(60);

    slow_reply.send_response(response(StatusCode::OK));
    assert_eq!(slow.await.unwrap().status(), StatusCode::OK);
    assert_eq!(registry.next_retry_at(KEY), Some(until));
}
