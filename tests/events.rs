//! Event subscription: one typed event per state change, delivered without ever
//! blocking the registry on a slow listener.

use std::sync::Arc;
use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{Request, Response, StatusCode};
use tokio::sync::broadcast::error::TryRecvError;
use tower::{BoxError, Layer, ServiceExt};
use url_backoff_registry::{BackoffEvent, BackoffLayer, BackoffRegistry, ManualClock, TripCause};

const KEY: &str = "api.example.com";

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn registry(clock: &ManualClock) -> BackoffRegistry {
    BackoffRegistry::builder()
        .threshold(2)
        .backoff(secs(60))
        .max_keys(2)
        .event_capacity(8)
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn drain(receiver: &mut tokio::sync::broadcast::Receiver<BackoffEvent>) -> Vec<BackoffEvent> {
    std::iter::from_fn(|| receiver.try_recv().ok()).collect()
}

fn key() -> Arc<str> {
    KEY.into()
}

#[test]
fn a_trip_is_reported_with_its_numbers() {
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let mut receiver = registry.subscribe();

    registry.record_failure(KEY);
    registry.record_failure(KEY);

    let expected = BackoffEvent::Tripped {
        key: key(),
        failures: 2,
        until: clock.now() + secs(60),
        until_wall: Some(clock.system_now() + secs(60)),
        backoff: secs(60),
        cause: TripCause::Threshold,
    };
    assert_eq!(drain(&mut receiver), [expected]);
}

#[tokio::test]
async fn the_layer_reports_refusals_hints_and_recoveries() {
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let mut receiver = registry.subscribe();
    let layer = BackoffLayer::new(registry.clone());
    let answer = |status: StatusCode, retry_after: Option<&'static str>| {
        let inner = tower::service_fn(move |_: Request<()>| async move {
            let mut response = Response::new(());
            *response.status_mut() = status;
            if let Some(value) = retry_after {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, value.parse().unwrap());
            }
            Ok::<_, BoxError>(response)
        });
        let request = Request::get(format!("http://{KEY}/private?token=1"))
            .body(())
            .unwrap();
        layer.layer(inner).oneshot(request)
    };

    // A 503 with Retry-After: 90 trips the key at once, below the threshold.
    answer(StatusCode::SERVICE_UNAVAILABLE, Some("90"))
        .await
        .unwrap();
    clock.advance(secs(30));
    answer(StatusCode::OK, None).await.unwrap_err();
    clock.advance(secs(60));
    answer(StatusCode::OK, None).await.unwrap();

    let events = drain(&mut receiver);
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(matches!(
        &events[0],
        BackoffEvent::Tripped { cause: TripCause::ServerHint, backoff, .. } if *backoff == secs(90)
    ));
    assert_eq!(
        events[1],
        BackoffEvent::ShortCircuited {
            key: key(),
            until: clock.now(),
            retry_after: secs(60),
            probing: false,
            shadow: false,
        }
    );
    assert_eq!(events[2], BackoffEvent::Recovered { key: key() });
    assert!(events.iter().all(|event| event.key() == KEY));
}

#[test]
fn evictions_and_releases_are_reported() {
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let mut receiver = registry.subscribe();

    registry.record_failure("a.example");
    registry.record_failure("b.example");
    registry.record_failure("c.example");
    let evicted = drain(&mut receiver);
    assert_eq!(evicted.len(), 1);
    assert!(matches!(
        &evicted[0],
        BackoffEvent::Evicted {
            in_backoff: false,
            ..
        }
    ));

    registry.force_backoff(KEY, clock.now() + secs(5));
    assert!(registry.release(KEY));
    let events = drain(&mut receiver);
    assert!(matches!(
        &events[events.len() - 2],
        BackoffEvent::Tripped {
            cause: TripCause::Forced,
            ..
        }
    ));
    assert_eq!(events.last(), Some(&BackoffEvent::Released { key: key() }));
}

#[test]
fn a_slow_listener_loses_old_events_and_never_blocks() {
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let mut slow = registry.subscribe();

    // 100 trips and releases with nobody reading: the registry never waits.
    for _ in 0..50 {
        registry.force_backoff(KEY, clock.now() + secs(5));
        registry.release(KEY);
    }

    // The channel holds 8 events; the receiver learns it missed the other 92.
    assert_eq!(slow.try_recv(), Err(TryRecvError::Lagged(92)));
    let kept = drain(&mut slow);
    assert_eq!(kept.len(), 8);
    assert_eq!(kept.last(), Some(&BackoffEvent::Released { key: key() }));
}

#[test]
fn every_subscriber_gets_every_event_and_none_is_needed() {
    let clock = ManualClock::new();
    let registry = registry(&clock);
    registry.record_failure(KEY);
    registry.record_failure(KEY);

    let mut first = registry.subscribe();
    let mut second = registry.subscribe();
    registry.release(KEY);
    assert_eq!(drain(&mut first), [BackoffEvent::Released { key: key() }]);
    assert_eq!(drain(&mut second), [BackoffEvent::Released { key: key() }]);
}
