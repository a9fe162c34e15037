//! Server hints: a failed response's `Retry-After` header puts its key into backoff at
//! once, through the layer, driven by a `ManualClock`.

use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{HeaderMap, Request, Response, StatusCode};
use tower::{BoxError, Layer, Service, ServiceExt};
use tower_test::mock;
use url_backoff_registry::{
    BackoffLayer, BackoffRegistry, BackoffService, ManualClock, Outcome, DEFAULT_MAX_RETRY_AFTER,
};

type Mock = mock::Mock<Request<()>, Response<()>>;
type Handle = mock::Handle<Request<()>, Response<()>>;

const URI: &str = "http://api.example.com/items";
const KEY: &str = "api.example.com";

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// A registry with threshold 3 and backoff 60 s on a manual clock.
fn registry() -> (BackoffRegistry, ManualClock) {
    let clock = ManualClock::new();
    let registry = BackoffRegistry::builder()
        .threshold(3)
        .backoff(secs(60))
        .clock(clock.clone())
        .build()
        .unwrap();
    (registry, clock)
}

fn response(status: StatusCode, retry_after: &[&str]) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = status;
    for value in retry_after {
        let value = value.parse().unwrap();
        response.headers_mut().append(RETRY_AFTER, value);
    }
    response
}

fn request() -> Request<()> {
    Request::get(URI).body(()).unwrap()
}

/// Sends one request through `service`; the mock answers with `reply`.
async fn exchange<K, C>(
    service: &mut BackoffService<Mock, K, C>,
    handle: &mut Handle,
    reply: Response<()>,
) -> Result<Response<()>, BoxError>
where
    BackoffService<Mock, K, C>: Service<Request<()>, Response = Response<()>, Error = BoxError>,
{
    let future = service.ready().await.unwrap().call(request());
    let (_, responder) = handle.next_request().await.unwrap();
    responder.send_response(reply);
    future.await
}

fn guarded(layer: BackoffLayer) -> (BackoffService<Mock>, Handle) {
    let (mock, handle) = mock::pair();
    (layer.layer(mock), handle)
}

#[tokio::test]
async fn delta_seconds_trip_the_key_at_once_below_the_threshold() {
    let (registry, clock) = registry();
    let (mut service, mut handle) = guarded(BackoffLayer::new(registry.clone()));

    let reply = response(StatusCode::SERVICE_UNAVAILABLE, &["30"]);
    let answer = exchange(&mut service, &mut handle, reply).await.unwrap();

    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    let stats = registry.stats(KEY);
    assert_eq!(stats.failures_in_window, 1);
    assert!(stats.in_backoff);
    assert_eq!(stats.backoff_until, Some(clock.now() + secs(30)));
}

#[tokio::test]
async fn an_http_date_is_read_against_the_clock() {
    let (registry, clock) = registry();
    let (mut service, mut handle) = guarded(BackoffLayer::new(registry.clone()));

    let date = httpdate::fmt_http_date(clock.system_now() + secs(45));
    let reply = response(StatusCode::TOO_MANY_REQUESTS, &[&date]);
    exchange(&mut service, &mut handle, reply).await.unwrap();

    assert_eq!(registry.next_retry_at(KEY), Some(clock.now() + secs(45)));
}

#[tokio::test]
async fn the_key_is_refused_until_the_hint_runs_out() {
    let (registry, clock) = registry();
    let (mut service, mut handle) = guarded(BackoffLayer::new(registry.clone()));
    let reply = response(StatusCode::SERVICE_UNAVAILABLE, &["5"]);
    exchange(&mut service, &mut handle, reply).await.unwrap();

    clock.advance(Duration::from_millis(4_999));
    handle.allow(1);
    let error = service.call(request()).await.unwrap_err();
    assert!(error.is::<url_backoff_registry::BackoffError>());

    clock.advance(Duration::from_millis(1));
    let reply = response(StatusCode::OK, &[]);
    let answer = exchange(&mut service, &mut handle, reply).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(registry.is_empty());
}

#[tokio::test]
async fn a_hint_never_shortens_a_deadline_and_the_later_one_wins() {
    let (registry, clock) = registry();
    let (mut service, mut handle) = guarded(BackoffLayer::new(registry.clone()));

    // Three calls in flight at once, so that all three responses reach the layer.
    let mut calls = Vec::new();
    for _ in 0..3 {
        let future = service.ready().await.unwrap().call(request());
        let (_, responder) = handle.next_request().await.unwrap();
        calls.push((future, responder));
    }
    let mut calls = calls.into_iter();
    let mut answer = |retry_after: &'static str| {
        let (future, responder) = calls.next().unwrap();
        responder.send_response(response(StatusCode::SERVICE_UNAVAILABLE, &[retry_after]));
        future
    };

    answer("100").await.unwrap();
    assert_eq!(registry.next_retry_at(KEY), Some(clock.now() + secs(100)));
    answer("10").await.unwrap();
    assert_eq!(registry.next_retry_at(KEY), Some(clock.now() + secs(100)));
    answer("200").await.unwrap();
    assert_eq!(registry.next_retry_at(KEY), Some(clock.now() + secs(200)));
    assert_eq!(registry.stats(KEY).failures_in_window, 3);
}

#[tokio::test]
async fn reaching_the_threshold_with_a_hint_keeps_the_later_deadline() {
    for (retry_after, expected) in [("300", secs(300)), ("10", secs(60))] {
        let (registry, clock) = registry();
        registry.record_failure(KEY);
        registry.record_failure(KEY);
        let (mut service, mut handle) = guarded(BackoffLayer::new(registry.clone()));

        let reply = response(StatusCode::BAD_GATEWAY, &[retry_after]);
        exchange(&mut service, &mut handle, reply).await.unwrap();

        assert_eq!(
            registry.next_retry_at(KEY),
            Some(clock.now() + expected),
            "Retry-After: {retry_after}"
        );
    }
}

#[tokio::test]
async fn invalid_values_are_ignored_and_the_response_counts_as_usual() {
    let invalid: &[&[&str]] = &[
        &["-1"],
        &["1.5"],
        &["+120"],
        &["120 seconds"],
        &["abc"],
        &[""],
        &["Mon, 06 Nov 1994 08:49:37 GMT"],
        &["Fri, 31 Dec 9999 23:59:60 GMT"],
        &["5", "5"],
        &["5", "Sun, 06 Nov 1994 08:49:37 GMT"],
    ];
    for values in invalid {
        let (registry, _clock) = registry();
        let (mut service, mut handle) = guarded(BackoffLayer::new(registry.clone()));

        let reply = response(StatusCode::SERVICE_UNAVAILABLE, values);
        let answer = exchange(&mut service, &mut handle, reply).await.unwrap();

        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        let stats = registry.stats(KEY);
        assert_eq!(stats.failures_in_window, 1, "{values:?}");
        assert!(!stats.in_backoff, "{values:?}");
    }
}

#[tokio::test]
async fn zero_and_past_dates_add_no_backoff() {
    for value in ["0", "Sun, 06 Nov 1994 08:49:37 GMT"] {
        let (registry, _clock) = registry();
        let (mut service, mut handle) = guarded(BackoffLayer::new(registry.clone()));

        let reply = response(StatusCode::SERVICE_UNAVAILABLE, &[value]);
        exchange(&mut service, &mut handle, reply).await.unwrap();

        let stats = registry.stats(KEY);
        assert_eq!(
            (stats.failures_in_window, stats.in_backoff),
            (1, false),
            "{value}"
        );
    }
}

#[tokio::test]
async fn hints_are_capped_at_one_hour_by_default() {
    assert_eq!(DEFAULT_MAX_RETRY_AFTER, secs(3_600));
    for value in [
        "3601",
        "99999999999999999999",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        let (registry, clock) = registry();
        let (mut service, mut handle) = guarded(BackoffLayer::new(registry.clone()));

        let reply = response(StatusCode::SERVICE_UNAVAILABLE, &[value]);
        exchange(&mut service, &mut handle, reply).await.unwrap();

        assert_eq!(
            registry.next_retry_at(KEY),
            Some(clock.now() + secs(3_600)),
            "{value}"
        );
    }
}

#[tokio::test]
async fn the_cap_is_configurable() {
    let (registry, clock) = registry();
    let layer = BackoffLayer::new(registry.clone()).max_retry_after(secs(90));
    let (mut service, mut handle) = guarded(layer);

    let reply = response(StatusCode::SERVICE_UNAVAILABLE, &["99999999999999999999"]);
    exchange(&mut service, &mut handle, reply).await.unwrap();

    assert_eq!(registry.next_retry_at(KEY), Some(clock.now() + secs(90)));
}

#[tokio::test]
async fn hints_can_be_turned_off() {
    let (registry, _clock) = registry();
    let layer = BackoffLayer::new(registry.clone()).respect_retry_after(false);
    let (mut service, mut handle) = guarded(layer);

    let reply = response(StatusCode::TOO_MANY_REQUESTS, &["30"]);
    exchange(&mut service, &mut handle, reply).await.unwrap();

    let stats = registry.stats(KEY);
    assert_eq!((stats.failures_in_window, stats.in_backoff), (1, false));
}

#[tokio::test]
async fn hints_on_successful_responses_are_ignored() {
    let (registry, _clock) = registry();
    registry.record_failure(KEY);
    let (mut service, mut handle) = guarded(BackoffLayer::new(registry.clone()));

    let reply = response(StatusCode::MOVED_PERMANENTLY, &["30"]);
    exchange(&mut service, &mut handle, reply).await.unwrap();

    assert!(registry.is_empty());
}

#[tokio::test]
async fn hints_follow_the_classifier() {
    // A classifier that calls 200 a failure and 503 neutral.
    let inverted = |status: StatusCode, _: &HeaderMap| match status {
        StatusCode::OK => Outcome::Failure,
        _ => Outcome::Neutral,
    };
    let (registry, clock) = registry();
    let (mock, mut handle) = mock::pair();
    let mut service = BackoffLayer::new(registry.clone())
        .classifier(inverted)
        .layer(mock);

    let reply = response(StatusCode::SERVICE_UNAVAILABLE, &["30"]);
    exchange(&mut service, &mut handle, reply).await.unwrap();
    assert!(registry.is_empty());

    let reply = response(StatusCode::OK, &["30"]);
    exchange(&mut service, &mut handle, reply).await.unwrap();
    assert_eq!(registry.next_retry_at(KEY), Some(clock.now() + secs(30)));
}

#[tokio::test]
async fn untracked_requests_ignore_hints() {
    let (registry, _clock) = registry();
    let (mut service, mut handle) = guarded(BackoffLayer::new(registry.clone()));

    let future = service
        .ready()
        .await
        .unwrap()
        .call(Request::get("/relative").body(()).unwrap());
    let (_, responder) = handle.next_request().await.unwrap();
    responder.send_response(response(StatusCode::SERVICE_UNAVAILABLE, &["30"]));
    future.await.unwrap();

    assert!(registry.is_empty());
}

#[tokio::test]
async fn an_unbounded_cap_saturates_instead_of_panicking() {
    let (registry, clock) = registry();
    let layer = BackoffLayer::new(registry.clone()).max_retry_after(Duration::MAX);
    let (mut service, mut handle) = guarded(layer);

    let reply = response(StatusCode::SERVICE_UNAVAILABLE, &["99999999999999999999"]);
    exchange(&mut service, &mut handle, reply).await.unwrap();

    // The deadline is as far as the registry can represent: centuries away.
    let until = registry.next_retry_at(KEY).unwrap();
    assert!(until > clock.now() + secs(100 * 365 * 24 * 3600));
    // At the end of the registry's time the backoff ends too, without overflow.
    clock.advance(Duration::MAX);
    assert!(!registry.should_backoff(KEY));
}

#[tokio::test]
async fn odd_retry_after_values_never_panic() {
    let pieces = [
        "0",
        "9",
        "-",
        "+",
        ".",
        " ",
        "\t",
        ",",
        "GMT",
        "Sun",
        "Nov",
        "06",
        "1994",
        "08:49:37",
        "99999999999999999999",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "\u{e9}",
    ];
    let (registry, clock) = registry();
    let (mut service, mut handle) = guarded(BackoffLayer::new(registry.clone()));
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2_000 {
        let mut value = String::new();
        for _ in 0..(state % 6) {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            value.push_str(pieces[(state >> 33) as usize % pieces.len()]);
        }
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let Ok(value) = http::HeaderValue::from_str(&value) else {
            continue;
        };
        registry.clear(KEY);
        let mut reply = response(StatusCode::SERVICE_UNAVAILABLE, &[]);
        reply.headers_mut().insert(RETRY_AFTER, value.clone());
        exchange(&mut service, &mut handle, reply).await.unwrap();
        assert_eq!(registry.stats(KEY).failures_in_window, 1, "{value:?}");
        if let Some(until) = registry.next_retry_at(KEY) {
            assert!(until <= clock.now() + DEFAULT_MAX_RETRY_AFTER, "{value:?}");
        }
    }
}
