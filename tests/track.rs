//! `BackoffRegistry::track`: any fallible future guarded by the registry.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use url_backoff_registry::{BackoffRegistry, ManualClock, TrackError};

const KEY: &str = "db.internal:5432";

fn registry() -> (BackoffRegistry, ManualClock) {
    let clock = ManualClock::new();
    let registry = BackoffRegistry::builder()
        .threshold(2)
        .backoff(Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .unwrap();
    (registry, clock)
}

/// A future that counts its polls and resolves to `result`.
fn counted<T>(polls: &Arc<AtomicUsize>, result: T) -> impl Future<Output = T> {
    let polls = Arc::clone(polls);
    async move {
        polls.fetch_add(1, Ordering::SeqCst);
        result
    }
}

#[tokio::test]
async fn an_error_records_a_failure_and_is_returned_as_inner() {
    let (registry, _clock) = registry();
    let result: Result<(), _> = registry.track(KEY, async { Err("refused") }).await;

    assert_eq!(result, Err(TrackError::Inner("refused")));
    assert_eq!(registry.stats(KEY).failures_in_window, 1);
}

#[tokio::test]
async fn success_clears_the_key() {
    let (registry, _clock) = registry();
    registry.record_failure(KEY);

    let result: Result<u8, TrackError<()>> = registry.track(KEY, async { Ok(7) }).await;

    assert_eq!(result, Ok(7));
    assert_eq!(registry.stats(KEY).failures_in_window, 0);
    assert!(registry.is_empty());
}

#[tokio::test]
async fn success_can_leave_the_key_alone() {
    let (registry, _clock) = registry();
    registry.record_failure(KEY);

    let result: Result<u8, TrackError<()>> = registry
        .track(KEY, async { Ok(7) })
        .clear_on_success(false)
        .await;

    assert_eq!(result, Ok(7));
    assert_eq!(registry.stats(KEY).failures_in_window, 1);
}

#[tokio::test]
async fn in_backoff_the_future_is_never_polled_and_nothing_is_recorded() {
    let (registry, clock) = registry();
    registry.record_failure(KEY);
    registry.record_failure(KEY);
    let until = clock.now() + Duration::from_secs(60);
    clock.advance(Duration::from_secs(20));

    let polls = Arc::new(AtomicUsize::new(0));
    let result = registry
        .track(KEY, counted(&polls, Err::<(), _>("boom")))
        .await;

    let error = result.unwrap_err();
    let backoff = error.as_backoff().unwrap();
    assert_eq!(backoff.key(), KEY);
    assert_eq!(backoff.until(), until);
    assert_eq!(backoff.retry_after(), Duration::from_secs(40));
    assert_eq!(
        error.to_string(),
        "`db.internal:5432` is in backoff, retry in 40.000s"
    );
    assert_eq!(polls.load(Ordering::SeqCst), 0);
    assert_eq!(registry.stats(KEY).failures_in_window, 2);
}

#[tokio::test]
async fn the_key_is_checked_when_awaited_not_when_created() {
    let (registry, _clock) = registry();
    let polls = Arc::new(AtomicUsize::new(0));
    let tracked = registry.track(KEY, counted(&polls, Ok::<_, ()>(())));

    registry.record_failure(KEY);
    registry.record_failure(KEY);

    assert!(tracked.await.unwrap_err().as_backoff().is_some());
    assert_eq!(polls.load(Ordering::SeqCst), 0);
}

#[test]
fn a_track_dropped_before_it_finishes_records_nothing() {
    let (registry, _clock) = registry();
    registry.record_failure(KEY);

    let mut context = Context::from_waker(Waker::noop());
    {
        let tracked = pin!(registry.track(KEY, std::future::pending::<Result<(), ()>>()));
        assert!(tracked.poll(&mut context).is_pending());
    }

    assert_eq!(registry.stats(KEY).failures_in_window, 1);
}

#[test]
fn a_pending_track_finishes_with_its_outcome() {
    let (registry, _clock) = registry();
    let (sender, receiver) = tokio::sync::oneshot::channel::<Result<(), &str>>();
    let mut context = Context::from_waker(Waker::noop());

    let mut tracked = pin!(registry.track(KEY, async move { receiver.await.unwrap() }));
    assert!(tracked.as_mut().poll(&mut context).is_pending());
    assert_eq!(registry.stats(KEY).failures_in_window, 0);

    sender.send(Err("late")).unwrap();
    let result = tracked.as_mut().poll(&mut context);
    assert_eq!(result, Poll::Ready(Err(TrackError::Inner("late"))));
    assert_eq!(registry.stats(KEY).failures_in_window, 1);
}

#[tokio::test]
async fn inner_errors_display_as_themselves() {
    let (registry, _clock) = registry();
    let result: Result<(), _> = registry
        .track(KEY, async {
            Err(std::io::Error::other("connection reset"))
        })
        .await;

    let error = result.unwrap_err();
    assert_eq!(error.to_string(), "connection reset");
    assert_eq!(
        error.into_inner().unwrap().kind(),
        std::io::ErrorKind::Other
    );
}
