//! Outcomes that arrive after their key changed: calls admitted before a trip can
//! neither end the backoff nor move its deadline, and a success admitted while the
//! key had no record clears nothing.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::oneshot;
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;
use url_backoff_registry::{BackoffLayer, BackoffRegistry, ManualClock, TrackError};

const URI: &str = "http://api.example.com/";
const KEY: &str = "api.example.com";

type Handle = mock::Handle<Request<()>, Response<()>>;

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// Window 100 s, threshold 3, backoff 10 s: history outlives the backoff.
fn registry() -> (BackoffRegistry, ManualClock) {
    let clock = ManualClock::new();
    let registry = BackoffRegistry::builder()
        .window(secs(100))
        .threshold(3)
        .backoff(secs(10))
        .clock(clock.clone())
        .build()
        .unwrap();
    (registry, clock)
}

fn trip(registry: &BackoffRegistry) {
    for _ in 0..3 {
        registry.record_failure(KEY);
    }
}

fn status(status: StatusCode) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = status;
    response
}

/// Starts a request through a fresh layer and returns its future and the mock's reply
/// handle, the request already admitted.
async fn admitted(
    registry: &BackoffRegistry,
) -> (
    impl Future<Output = Result<Response<()>, tower::BoxError>>,
    mock::SendResponse<Response<()>>,
    Handle,
) {
    let (mock, mut handle) = mock::pair::<Request<()>, Response<()>>();
    let mut service = BackoffLayer::new(registry.clone()).layer(mock);
    let request = Request::get(URI).body(()).unwrap();
    let future = service.ready().await.unwrap().call(request);
    let (_, reply) = handle.next_request().await.unwrap();
    (future, reply, handle)
}

#[tokio::test]
async fn a_late_failure_is_counted_but_does_not_move_the_deadline() {
    let (registry, clock) = registry();
    let (future, reply, _handle) = admitted(&registry).await;
    trip(&registry);
    let until = clock.now() + secs(10);

    clock.advance(secs(5));
    reply.send_response(status(StatusCode::BAD_GATEWAY));
    future.await.unwrap();

    assert_eq!(registry.next_retry_at(KEY), Some(until));

    // It was counted: once the trip's failures (t = 0) leave the window, the late one
    // (t = 5) is still in it.
    clock.advance(secs(96));
    assert_eq!(registry.stats(KEY).failures_in_window, 1);
}

#[tokio::test]
async fn a_late_failure_after_the_backoff_does_not_trip_again() {
    let (registry, clock) = registry();
    let (future, reply, _handle) = admitted(&registry).await;
    trip(&registry);

    // The slow call fails after the backoff is over, with three failures still in the
    // window. It was admitted before the trip, which already accounted for it.
    clock.advance(secs(11));
    reply.send_response(status(StatusCode::SERVICE_UNAVAILABLE));
    future.await.unwrap();
    assert!(!registry.should_backoff(KEY));

    // A failure of a call admitted now does trip the key again.
    let (future, reply, _handle) = admitted(&registry).await;
    reply.send_response(status(StatusCode::SERVICE_UNAVAILABLE));
    future.await.unwrap();
    assert_eq!(registry.next_retry_at(KEY), Some(clock.now() + secs(10)));
}

#[tokio::test]
async fn a_late_success_after_the_backoff_does_not_clear_the_history() {
    let (registry, clock) = registry();
    let (future, reply, _handle) = admitted(&registry).await;
    trip(&registry);

    clock.advance(secs(11));
    reply.send_response(status(StatusCode::OK));
    future.await.unwrap();

    assert_eq!(registry.stats(KEY).failures_in_window, 3);
}

#[tokio::test]
async fn a_success_admitted_after_the_backoff_clears_the_key() {
    let (registry, clock) = registry();
    trip(&registry);
    clock.advance(secs(10));

    let (future, reply, _handle) = admitted(&registry).await;
    reply.send_response(status(StatusCode::OK));
    future.await.unwrap();

    assert_eq!(registry.stats(KEY).failures_in_window, 0);
    assert!(registry.is_empty());
}

#[tokio::test]
async fn a_key_failing_during_a_call_is_cleared_by_its_success() {
    let (registry, _clock) = registry();
    registry.record_failure(KEY);
    let (future, reply, _handle) = admitted(&registry).await;

    // One more failure while the call runs, but no trip: the call's success is current.
    registry.record_failure(KEY);
    reply.send_response(status(StatusCode::OK));
    future.await.unwrap();

    assert!(registry.is_empty());
}

#[tokio::test]
async fn a_success_admitted_while_the_key_had_no_record_clears_nothing() {
    let (registry, _clock) = registry();
    trip(&registry);
    registry.clear(KEY);
    let (future, reply, _handle) = admitted(&registry).await;

    // The key's only failure came after the call was sent: its success is older news.
    registry.record_failure(KEY);
    reply.send_response(status(StatusCode::OK));
    future.await.unwrap();

    assert_eq!(registry.stats(KEY).failures_in_window, 1);
    assert_eq!(registry.keys(), vec![KEY.to_owned()]);
}

#[tokio::test]
async fn a_failure_admitted_while_the_key_had_no_record_counts() {
    let (registry, _clock) = registry();
    let (future, reply, _handle) = admitted(&registry).await;
    registry.record_failure(KEY);
    registry.record_failure(KEY);

    reply.send_response(status(StatusCode::SERVICE_UNAVAILABLE));
    future.await.unwrap();

    assert_eq!(registry.stats(KEY).failures_in_window, 3);
    assert!(registry.should_backoff(KEY));
}

#[tokio::test]
async fn a_call_that_outlives_its_registry_still_completes() {
    let (registry, _clock) = registry();
    let mut events = registry.subscribe();
    let (future, reply, _handle) = admitted(&registry).await;

    // The last handle goes: the call to a key without a record did not keep one.
    drop(registry);
    assert_eq!(events.try_recv(), Err(TryRecvError::Closed));
    reply.send_response(status(StatusCode::SERVICE_UNAVAILABLE));
    let response = future.await.unwrap();

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn track_follows_the_same_rule() {
    let (registry, clock) = registry();
    let mut context = Context::from_waker(Waker::noop());
    let (succeed, succeeded) = oneshot::channel::<Result<(), ()>>();
    let (fail, failed) = oneshot::channel::<Result<(), ()>>();

    let mut slow_success = pin!(registry.track(KEY, async { succeeded.await.unwrap() }));
    let mut slow_failure = pin!(registry.track(KEY, async { failed.await.unwrap() }));
    assert!(slow_success.as_mut().poll(&mut context).is_pending());
    assert!(slow_failure.as_mut().poll(&mut context).is_pending());

    trip(&registry);
    let until = clock.now() + secs(10);
    clock.advance(secs(3));

    succeed.send(Ok(())).unwrap();
    assert_eq!(slow_success.poll(&mut context), Poll::Ready(Ok(())));
    fail.send(Err(())).unwrap();
    assert_eq!(
        slow_failure.poll(&mut context),
        Poll::Ready(Err(TrackError::Inner(())))
    );

    assert_eq!(registry.next_retry_at(KEY), Some(until));
    assert_eq!(registry.stats(KEY).failures_in_window, 3);
    clock.advance(secs(98));
    assert_eq!(registry.stats(KEY).failures_in_window, 1);
}
