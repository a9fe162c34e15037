//! What counts: the default classifier through the layer, custom classifiers, the
//! success switch, and refusals of nested layers.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use http::{HeaderMap, Request, Response, StatusCode};
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt};
use tower_test::mock;
use url_backoff_registry::{
    BackoffError, BackoffLayer, BackoffRegistry, Classify, DefaultClassifier, ManualClock, Outcome,
};

type Handle = mock::Handle<Request<()>, Response<()>>;

const URI: &str = "http://api.example.com/items";
const KEY: &str = "api.example.com";

fn registry(threshold: u32) -> BackoffRegistry {
    BackoffRegistry::builder()
        .threshold(threshold)
        .backoff(Duration::from_secs(60))
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

fn request() -> Request<()> {
    Request::get(URI).body(()).unwrap()
}

fn response(status: StatusCode) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = status;
    response
}

/// Sends one request through `service`; the mock answers with `reply`.
async fn exchange<S>(
    service: &mut S,
    handle: &mut Handle,
    reply: Result<Response<()>, &'static str>,
) -> Result<Response<()>, BoxError>
where
    S: Service<Request<()>, Response = Response<()>, Error = BoxError>,
{
    let future = service.ready().await.unwrap().call(request());
    let (_, responder) = handle.next_request().await.unwrap();
    match reply {
        Ok(reply) => responder.send_response(reply),
        Err(error) => responder.send_error(error),
    }
    future.await
}

fn failures(registry: &BackoffRegistry) -> usize {
    registry.stats(KEY).failures_in_window
}

#[tokio::test]
async fn request_timeout_408_is_a_failure_by_default() {
    let registry = registry(10);
    let (mock, mut handle) = mock::pair::<Request<()>, Response<()>>();
    let mut service = BackoffLayer::new(registry.clone()).layer(mock);

    let reply = Ok(response(StatusCode::REQUEST_TIMEOUT));
    exchange(&mut service, &mut handle, reply).await.unwrap();

    assert_eq!(failures(&registry), 1);
}

/// Treats 404 as a failure, 503 as neutral, other statuses as the defaults do; an
/// error whose message says "cancelled" is neutral, others are failures.
#[derive(Clone)]
struct Strict;

impl Classify for Strict {
    fn classify_response(&self, status: StatusCode, headers: &HeaderMap) -> Outcome {
        match status {
            StatusCode::NOT_FOUND => Outcome::Failure,
            StatusCode::SERVICE_UNAVAILABLE => Outcome::Neutral,
            _ => DefaultClassifier.classify_response(status, headers),
        }
    }

    fn classify_error(&self, error: &(dyn Error + 'static)) -> Outcome {
        if error.to_string().contains("cancelled") {
            Outcome::Neutral
        } else {
            Outcome::Failure
        }
    }
}

fn strict(
    registry: &BackoffRegistry,
) -> (
    impl Service<Request<()>, Response = Response<()>, Error = BoxError>,
    Handle,
) {
    let (mock, handle) = mock::pair::<Request<()>, Response<()>>();
    let service = BackoffLayer::new(registry.clone())
        .classifier(Strict)
        .layer(mock);
    (service, handle)
}

#[tokio::test]
async fn a_custom_classifier_decides_for_responses() {
    let registry = registry(10);
    let (mut service, mut handle) = strict(&registry);

    exchange(
        &mut service,
        &mut handle,
        Ok(response(StatusCode::NOT_FOUND)),
    )
    .await
    .unwrap();
    assert_eq!(failures(&registry), 1);

    // Neutral: the failure stays, nothing is added.
    exchange(
        &mut service,
        &mut handle,
        Ok(response(StatusCode::SERVICE_UNAVAILABLE)),
    )
    .await
    .unwrap();
    assert_eq!(failures(&registry), 1);

    // The defaults it falls back to: 502 fails, 200 clears.
    exchange(
        &mut service,
        &mut handle,
        Ok(response(StatusCode::BAD_GATEWAY)),
    )
    .await
    .unwrap();
    assert_eq!(failures(&registry), 2);
    exchange(&mut service, &mut handle, Ok(response(StatusCode::OK)))
        .await
        .unwrap();
    assert!(registry.is_empty());
}

#[tokio::test]
async fn a_custom_classifier_decides_for_errors() {
    let registry = registry(10);
    let (mut service, mut handle) = strict(&registry);

    let error = exchange(&mut service, &mut handle, Err("request cancelled"))
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "request cancelled");
    assert!(registry.is_empty());

    exchange(&mut service, &mut handle, Err("connection reset"))
        .await
        .unwrap_err();
    assert_eq!(failures(&registry), 1);
}

#[tokio::test]
async fn a_closure_classifier_counts_errors_as_failures() {
    let registry = registry(10);
    let (mock, mut handle) = mock::pair::<Request<()>, Response<()>>();
    let everything_fine = |_: StatusCode, _: &HeaderMap| Outcome::Success;
    let mut service = BackoffLayer::new(registry.clone())
        .classifier(everything_fine)
        .layer(mock);

    exchange(
        &mut service,
        &mut handle,
        Ok(response(StatusCode::INTERNAL_SERVER_ERROR)),
    )
    .await
    .unwrap();
    assert!(registry.is_empty());

    exchange(&mut service, &mut handle, Err("connection refused"))
        .await
        .unwrap_err();
    assert_eq!(failures(&registry), 1);
}

#[tokio::test]
async fn without_clear_on_success_a_success_records_nothing() {
    let registry = registry(2);
    let (mock, mut handle) = mock::pair::<Request<()>, Response<()>>();
    let mut service = BackoffLayer::new(registry.clone())
        .clear_on_success(false)
        .layer(mock);

    exchange(
        &mut service,
        &mut handle,
        Ok(response(StatusCode::BAD_GATEWAY)),
    )
    .await
    .unwrap();
    exchange(&mut service, &mut handle, Ok(response(StatusCode::OK)))
        .await
        .unwrap();
    assert_eq!(failures(&registry), 1);

    // A slow success admitted before the trip does not end the backoff either.
    let slow = service.ready().await.unwrap().call(request());
    let (_, slow_reply) = handle.next_request().await.unwrap();
    exchange(
        &mut service,
        &mut handle,
        Ok(response(StatusCode::BAD_GATEWAY)),
    )
    .await
    .unwrap();
    assert!(registry.should_backoff(KEY));
    slow_reply.send_response(response(StatusCode::OK));
    slow.await.unwrap();
    assert!(registry.should_backoff(KEY));
    assert_eq!(failures(&registry), 2);
}

/// A refusal wrapped in another error, as a middleware with its own error type would.
#[derive(Debug)]
struct Wrapped(BackoffError);

impl fmt::Display for Wrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request not sent")
    }
}

impl Error for Wrapped {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}

/// A classifier that calls every outcome a failure, to show it is never asked about a
/// refusal.
#[derive(Clone)]
struct Pessimist;

impl Classify for Pessimist {
    fn classify_response(&self, _: StatusCode, _: &HeaderMap) -> Outcome {
        Outcome::Failure
    }

    fn classify_error(&self, _: &(dyn Error + 'static)) -> Outcome {
        Outcome::Failure
    }
}

#[tokio::test]
async fn refusals_of_an_inner_layer_never_count_outside_even_when_wrapped() {
    let inner_registry = registry(1);
    inner_registry.record_failure(KEY);
    let refusal = inner_registry.check(KEY).unwrap_err();

    let outer_registry = registry(1);
    let wrapped_refusal = tower::service_fn(move |_: Request<()>| {
        let refusal = refusal.clone();
        async move { Err::<Response<()>, BoxError>(Box::new(Wrapped(refusal))) }
    });
    let mut outer = ServiceBuilder::new()
        .layer(BackoffLayer::new(outer_registry.clone()).classifier(Pessimist))
        .service(wrapped_refusal);

    let error = outer
        .ready()
        .await
        .unwrap()
        .call(request())
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "request not sent");
    assert!(BackoffError::is_backoff(&error));
    assert_eq!(BackoffError::find(&*error).unwrap().key(), KEY);
    assert!(outer_registry.is_empty());
}

#[tokio::test]
async fn nested_layers_refusing_count_as_nothing_with_any_classifier() {
    let inner_registry = registry(1);
    inner_registry.record_failure(KEY);
    let outer_registry = registry(1);

    let ok =
        tower::service_fn(|_: Request<()>| async { Ok::<_, BoxError>(response(StatusCode::OK)) });
    let mut service = ServiceBuilder::new()
        .layer(BackoffLayer::new(outer_registry.clone()).classifier(Pessimist))
        .layer(BackoffLayer::new(inner_registry.clone()))
        .service(ok);

    for _ in 0..3 {
        let error = service
            .ready()
            .await
            .unwrap()
            .call(request())
            .await
            .unwrap_err();
        assert!(BackoffError::is_backoff(&error));
    }
    assert!(outer_registry.is_empty());
    assert_eq!(inner_registry.stats(KEY).failures_in_window, 1);
}

/// Retries a failed call up to the given number of times more.
#[derive(Clone)]
struct RetryErrors(usize);

impl<Res> tower::retry::Policy<Request<()>, Res, BoxError> for RetryErrors {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        _request: &mut Request<()>,
        result: &mut Result<Res, BoxError>,
    ) -> Option<Self::Future> {
        let retry = result.is_err() && self.0 > 0;
        self.0 -= usize::from(retry);
        retry.then(|| std::future::ready(()))
    }

    fn clone_request(&mut self, request: &Request<()>) -> Option<Request<()>> {
        Some(request.clone())
    }
}

#[tokio::test]
async fn a_retry_layer_inside_the_backoff_layer_makes_one_call_count_once() {
    let registry = registry(10);
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&attempts);
    let always_failing = tower::service_fn(move |_: Request<()>| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { Err::<Response<()>, BoxError>("connection reset".into()) }
    });
    let mut service = ServiceBuilder::new()
        .layer(BackoffLayer::new(registry.clone()))
        .layer(tower::retry::RetryLayer::new(RetryErrors(2)))
        .service(always_failing);

    let error = service
        .ready()
        .await
        .unwrap()
        .call(request())
        .await
        .unwrap_err();

    // Three attempts reached the host; the backoff layer saw one failed call.
    assert_eq!(error.to_string(), "connection reset");
    assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(failures(&registry), 1);
}
