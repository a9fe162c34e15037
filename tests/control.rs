//! Operators' tools: forcing and releasing a key, shadow mode, and the snapshot of
//! every key.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tower::{BoxError, Layer, ServiceExt};
use url_backoff_registry::{
    BackoffError, BackoffEvent, BackoffLayer, BackoffRegistry, ManualClock, Rule,
};

const KEY: &str = "legacy.internal";

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn registry(clock: &ManualClock) -> BackoffRegistry {
    BackoffRegistry::builder()
        .threshold(2)
        .backoff(secs(60))
        .clock(clock.clone())
        .build()
        .unwrap()
}

#[test]
fn force_backoff_sets_the_deadline_in_either_direction() {
    let clock = ManualClock::new();
    let registry = registry(&clock);

    let far = clock.now() + secs(3_600);
    registry.force_backoff(KEY, far);
    assert_eq!(registry.next_retry_at(KEY), Some(far));
    assert_eq!(registry.stats(KEY).failures_in_window, 0);

    let near = clock.now() + secs(5);
    registry.force_backoff(KEY, near);
    assert_eq!(registry.next_retry_at(KEY), Some(near));

    clock.advance(secs(5));
    assert!(!registry.should_backoff(KEY));
}

#[test]
fn forcing_a_time_that_has_passed_releases_the_key() {
    let clock = ManualClock::new();
    let registry = registry(&clock);
    registry.record_failure(KEY);
    registry.record_failure(KEY);

    registry.force_backoff(KEY, clock.now());
    assert!(!registry.should_backoff(KEY));
    assert!(registry.is_empty());
}

#[test]
fn release_ends_a_backoff_and_forgets_the_failures() {
    let clock = ManualClock::new();
    let registry = registry(&clock);
    registry.record_failure(KEY);
    registry.record_failure(KEY);
    assert!(registry.should_backoff(KEY));

    assert!(registry.release(KEY));
    assert!(!registry.should_backoff(KEY));
    assert_eq!(registry.stats(KEY).failures_in_window, 0);

    // Nothing to release the second time, or for a key that never tripped.
    assert!(!registry.release(KEY));
    registry.record_failure("other");
    assert!(!registry.release("other"));
}

#[test]
fn release_leaves_a_key_that_is_not_held_alone() {
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let mut events = registry.subscribe();
    registry.record_failure(KEY);

    assert!(!registry.release(KEY));
    assert_eq!(registry.stats(KEY).failures_in_window, 1);
    assert!(events.try_recv().is_err());
}

#[test]
fn record_success_is_the_layers_success_for_any_caller() {
    let clock = ManualClock::new();
    let registry = BackoffRegistry::builder()
        .threshold(2)
        .backoff(secs(60))
        .escalation(url_backoff_registry::Escalation::new(2.0, secs(600)))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut events = registry.subscribe();
    for _ in 0..2 {
        registry.record_failure(KEY);
    }
    clock.advance(secs(60));
    for _ in 0..2 {
        registry.record_failure(KEY);
    }
    let _ = events.try_recv();
    let _ = events.try_recv();

    // In backoff after a second, escalated trip: the caller reports that the host
    // works.
    registry.record_success(KEY);
    assert!(!registry.should_backoff(KEY));
    assert_eq!(registry.stats(KEY).failures_in_window, 0);
    assert_eq!(
        events.try_recv().unwrap(),
        BackoffEvent::Recovered { key: KEY.into() }
    );

    // The escalation is remembered while it fades; `clear` forgets it silently.
    assert_eq!(registry.snapshot()[0].multiplier, 2.0);
    registry.clear(KEY);
    assert!(registry.snapshot().is_empty());
    assert!(events.try_recv().is_err());

    // Nothing to record for a key the registry does not know.
    registry.record_success("unknown.example");
    assert!(registry.is_empty());
}

#[tokio::test]
async fn shadow_mode_lets_calls_through_but_reports_and_records_as_usual() {
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let mut events = registry.subscribe();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let upstream = tower::service_fn(move |_: Request<()>| {
        let sequence = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut response = Response::new(());
            *response.status_mut() = match sequence {
                0 | 1 => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::OK,
            };
            Ok::<_, BoxError>(response)
        }
    });
    let layer = BackoffLayer::new(registry.clone()).shadow(true);
    let call = || {
        let request = Request::get(format!("http://{KEY}/")).body(()).unwrap();
        layer.layer(upstream.clone()).oneshot(request)
    };

    for _ in 0..2 {
        assert_eq!(
            call().await.unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    let until = clock.now() + secs(60);

    // In backoff: the call still reaches the upstream, and succeeds...
    assert_eq!(call().await.unwrap().status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // ...but its success is not recorded, because with the layer on it would not have
    // happened: the backoff stands exactly as it would.
    assert_eq!(registry.next_retry_at(KEY), Some(until));
    let seen: Vec<_> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[1],
        BackoffEvent::ShortCircuited {
            key: KEY.into(),
            until,
            retry_after: secs(60),
            probing: false,
            shadow: true,
        }
    );

    // The same layer enforcing refuses.
    let enforcing = BackoffLayer::new(registry.clone());
    let request = Request::get(format!("http://{KEY}/")).body(()).unwrap();
    let error = enforcing
        .layer(upstream.clone())
        .oneshot(request)
        .await
        .unwrap_err();
    assert!(error.is::<BackoffError>());
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn the_snapshot_lists_every_key_with_something_to_show() {
    let clock = ManualClock::new();
    let registry = registry(&clock);
    registry
        .set_rule("b.example", Rule::default().threshold(1))
        .unwrap();
    registry.record_failure("a.example");
    registry.record_failure("b.example");
    registry.record_failure("stale.example");
    clock.advance(secs(10));
    registry.record_failure("a.example");

    clock.advance(secs(25));
    let snapshot = registry.snapshot();
    let keys: Vec<_> = snapshot.iter().map(|entry| entry.key.as_str()).collect();
    assert_eq!(keys, ["a.example", "b.example"]);

    let a = &snapshot[0];
    assert_eq!(
        (
            a.failures_in_window,
            a.in_backoff,
            a.trips,
            a.multiplier,
            a.probing
        ),
        (1, true, 1, 1.0, false)
    );
    assert_eq!(a.retry_after, Some(secs(35)));
    assert_eq!(a.backoff_until, Some(clock.now() + secs(35)));
    let b = &snapshot[1];
    assert_eq!((b.failures_in_window, b.retry_after), (0, Some(secs(25))));
}

#[cfg(feature = "serde")]
#[test]
fn the_snapshot_serialises_to_json() {
    let clock = ManualClock::new();
    let registry = registry(&clock);
    registry.force_backoff(KEY, clock.now() + Duration::from_millis(1_500));
    registry.record_failure("healthy.example");

    let json = serde_json::to_string(&registry.snapshot()).unwrap();
    assert_eq!(
        json,
        concat!(
            r#"[{"key":"healthy.example","failures_in_window":1,"in_backoff":false,"#,
            r#""retry_after_secs":null,"probing":false,"trips":0,"multiplier":1.0},"#,
            r#"{"key":"legacy.internal","failures_in_window":0,"in_backoff":true,"#,
            r#""retry_after_secs":1.5,"probing":false,"trips":1,"multiplier":1.0}]"#
        )
    );
}
