//! Probing on recovery: when a backoff ends, only `probes` calls reach the host until
//! one of them finishes, across clones, the layer and `track`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{HeaderMap, Request, Response, StatusCode};
use tokio::sync::watch;
use tower::{BoxError, Layer, ServiceExt};
use url_backoff_registry::{
    AuthorityKey, BackoffError, BackoffEvent, BackoffLayer, BackoffRegistry, Classify, Escalation,
    ManualClock, Outcome, ProbeResult, TrackError, TripCause,
};

const URI: &str = "http://upstream.example/";
const KEY: &str = "upstream.example";

type Call = Pin<Box<dyn Future<Output = Result<Response<()>, BoxError>> + Send>>;

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// Threshold 3, backoff 10 s, `probes` probe slots.
fn registry(probes: u32) -> (BackoffRegistry, ManualClock) {
    let clock = ManualClock::new();
    let registry = BackoffRegistry::builder()
        .threshold(3)
        .backoff(secs(10))
        .probes(probes)
        .clock(clock.clone())
        .build()
        .unwrap();
    (registry, clock)
}

/// Trips the key and moves the clock to the end of its backoff.
fn trip_and_wait(registry: &BackoffRegistry, clock: &ManualClock) {
    for _ in 0..3 {
        registry.record_failure(KEY);
    }
    clock.advance(secs(10));
}

/// An upstream whose responses wait until the test releases them with a status.
#[derive(Clone)]
struct Upstream {
    calls: Arc<AtomicUsize>,
    release: Arc<watch::Sender<Option<StatusCode>>>,
}

impl Upstream {
    fn new() -> Self {
        Self {
            calls: Arc::new(AtomicUsize::new(0)),
            release: Arc::new(watch::channel(None).0),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Lets every waiting and future response through with `status`.
    fn answer(&self, status: StatusCode) {
        self.release.send_replace(Some(status));
    }

    /// Starts one call through `layer`, polling it once.
    fn start(&self, layer: &BackoffLayer) -> Result<Call, BoxError> {
        let upstream = self.clone();
        let inner = tower::service_fn(move |_: Request<()>| {
            upstream.calls.fetch_add(1, Ordering::SeqCst);
            let mut released = upstream.release.subscribe();
            async move {
                let status = *released.wait_for(Option::is_some).await?;
                let mut response = Response::new(());
                *response.status_mut() = status.unwrap();
                Ok::<_, BoxError>(response)
            }
        });
        let request = Request::get(URI).body(()).unwrap();
        let mut call: Call = Box::pin(layer.layer(inner).oneshot(request));
        match poll_once(&mut call) {
            Poll::Pending => Ok(call),
            Poll::Ready(Ok(_)) => panic!("the upstream answered before it was released"),
            Poll::Ready(Err(error)) => Err(error),
        }
    }
}

fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

fn finish(mut call: Call) -> Result<Response<()>, BoxError> {
    match poll_once(&mut call) {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("the call did not finish"),
    }
}

fn events(receiver: &mut tokio::sync::broadcast::Receiver<BackoffEvent>) -> Vec<BackoffEvent> {
    std::iter::from_fn(|| receiver.try_recv().ok()).collect()
}

#[test]
fn fifty_calls_at_the_end_of_a_backoff_reach_the_host_as_one() {
    let (registry, clock) = registry(1);
    let layer = BackoffLayer::new(registry.clone());
    let upstream = Upstream::new();
    trip_and_wait(&registry, &clock);

    let (mut probes, mut refused) = (Vec::new(), 0);
    for _ in 0..50 {
        match upstream.start(&layer) {
            Ok(call) => probes.push(call),
            Err(error) => {
                let backoff = error.downcast_ref::<BackoffError>().unwrap();
                assert!(backoff.is_probing());
                assert_eq!(backoff.retry_after(), Duration::ZERO);
                refused += 1;
            }
        }
    }

    assert_eq!((upstream.calls(), probes.len(), refused), (1, 1, 49));
    assert!(registry.should_backoff(KEY));
}

#[test]
fn a_successful_probe_clears_the_key() {
    let (registry, clock) = registry(1);
    let mut receiver = registry.subscribe();
    let layer = BackoffLayer::new(registry.clone());
    let upstream = Upstream::new();
    trip_and_wait(&registry, &clock);
    events(&mut receiver);

    let probe = upstream.start(&layer).unwrap();
    upstream.answer(StatusCode::OK);
    assert_eq!(finish(probe).unwrap().status(), StatusCode::OK);

    let key: Arc<str> = KEY.into();
    assert_eq!(
        events(&mut receiver),
        [
            BackoffEvent::ProbeAdmitted { key: key.clone() },
            BackoffEvent::ProbeFinished {
                key: key.clone(),
                result: ProbeResult::Succeeded
            },
            BackoffEvent::Recovered { key },
        ]
    );
    assert!(registry.is_empty());

    // Everyone goes through again.
    for _ in 0..3 {
        finish(upstream.start_ready(&layer)).unwrap();
    }
    assert_eq!(upstream.calls(), 4);
}

#[test]
fn a_failed_probe_trips_the_key_again_at_once() {
    let (registry, clock) = registry(1);
    let mut receiver = registry.subscribe();
    let layer = BackoffLayer::new(registry.clone());
    let upstream = Upstream::new();
    trip_and_wait(&registry, &clock);
    clock.advance(secs(100));
    events(&mut receiver);

    // The threshold's failures are long out of the window: one failing probe is enough.
    let probe = upstream.start(&layer).unwrap();
    clock.advance(secs(1));
    upstream.answer(StatusCode::BAD_GATEWAY);
    finish(probe).unwrap();

    let until = clock.now() + secs(10);
    assert_eq!(registry.next_retry_at(KEY), Some(until));
    let events = events(&mut receiver);
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[1],
        BackoffEvent::ProbeFinished {
            key: KEY.into(),
            result: ProbeResult::Failed
        }
    );
    match &events[2] {
        BackoffEvent::Tripped {
            cause,
            until: tripped_until,
            failures,
            ..
        } => assert_eq!(
            (*cause, *tripped_until, *failures),
            (TripCause::ProbeFailed, until, 1)
        ),
        other => panic!("expected a trip, got {other:?}"),
    }
}

#[test]
fn a_failed_probe_escalates_when_escalation_is_on() {
    let clock = ManualClock::new();
    let registry = BackoffRegistry::builder()
        .threshold(1)
        .backoff(secs(10))
        .escalation(Escalation::new(2.0, secs(60)))
        .probes(1)
        .clock(clock.clone())
        .build()
        .unwrap();
    let layer = BackoffLayer::new(registry.clone());
    let upstream = Upstream::new();
    upstream.answer(StatusCode::SERVICE_UNAVAILABLE);
    registry.record_failure(KEY);

    let mut backoffs = Vec::new();
    for _ in 0..3 {
        let until = registry.next_retry_at(KEY).unwrap();
        clock.advance(until - clock.now());
        finish(upstream.start_ready(&layer)).unwrap();
        backoffs.push((registry.next_retry_at(KEY).unwrap() - clock.now()).as_secs());
    }
    assert_eq!(backoffs, [20, 40, 60]);
}

impl Upstream {
    /// Starts a call that the upstream answers at once (it was released already).
    fn start_ready<C>(&self, layer: &BackoffLayer<AuthorityKey, C>) -> Call
    where
        C: Classify + Clone + Send + Sync + 'static,
    {
        let upstream = self.clone();
        let inner = tower::service_fn(move |_: Request<()>| {
            upstream.calls.fetch_add(1, Ordering::SeqCst);
            let status = upstream.release.borrow().unwrap();
            async move {
                let mut response = Response::new(());
                *response.status_mut() = status;
                Ok::<_, BoxError>(response)
            }
        });
        Box::pin(
            layer
                .layer(inner)
                .oneshot(Request::get(URI).body(()).unwrap()),
        )
    }
}

#[test]
fn a_dropped_probe_frees_its_slot() {
    let (registry, clock) = registry(1);
    let mut receiver = registry.subscribe();
    let layer = BackoffLayer::new(registry.clone());
    let upstream = Upstream::new();
    trip_and_wait(&registry, &clock);
    events(&mut receiver);

    let probe = upstream.start(&layer).unwrap();
    assert!(upstream.start(&layer).is_err());
    drop(probe);

    let next = upstream.start(&layer).unwrap();
    assert_eq!(upstream.calls(), 2);
    let key: Arc<str> = KEY.into();
    let abandoned = BackoffEvent::ProbeFinished {
        key: key.clone(),
        result: ProbeResult::Abandoned,
    };
    let seen = events(&mut receiver);
    assert!(seen.contains(&abandoned), "{seen:?}");
    assert_eq!(seen.last(), Some(&BackoffEvent::ProbeAdmitted { key }));
    drop(next);
}

#[test]
fn a_probe_whose_outcome_is_neutral_frees_its_slot() {
    let (registry, clock) = registry(1);
    let not_found_is_neutral = |status: StatusCode, _: &HeaderMap| match status {
        StatusCode::NOT_FOUND => Outcome::Neutral,
        _ => Outcome::Success,
    };
    let layer = BackoffLayer::new(registry.clone()).classifier(not_found_is_neutral);
    let upstream = Upstream::new();
    trip_and_wait(&registry, &clock);

    upstream.answer(StatusCode::NOT_FOUND);
    let mut first = upstream.start_ready(&layer);
    assert!(matches!(poll_once(&mut first), Poll::Ready(Ok(_))));

    // The key still waits for a probe, and the slot is free for the next call.
    assert!(registry.snapshot()[0].probing);
    assert!(!registry.should_backoff(KEY));
    upstream.answer(StatusCode::OK);
    let mut second = upstream.start_ready(&layer);
    assert!(matches!(poll_once(&mut second), Poll::Ready(Ok(_))));
    assert!(registry.is_empty());
}

#[tokio::test]
async fn probe_slots_are_shared_by_the_layer_and_track() {
    let (registry, clock) = registry(1);
    let layer = BackoffLayer::new(registry.clone());
    let upstream = Upstream::new();
    trip_and_wait(&registry, &clock);

    let probe = upstream.start(&layer).unwrap();
    let tracked: Result<(), TrackError<()>> = registry.track(KEY, async { Ok(()) }).await;
    let refused = tracked.unwrap_err();
    assert!(refused.as_backoff().unwrap().is_probing());
    assert_eq!(
        refused.as_backoff().unwrap().to_string(),
        "`upstream.example` is waiting for a probe, retry shortly"
    );

    upstream.answer(StatusCode::OK);
    finish(probe).unwrap();
    let tracked: Result<(), TrackError<()>> = registry.track(KEY, async { Ok(()) }).await;
    assert_eq!(tracked, Ok(()));
}

#[test]
fn two_slots_admit_two_probes() {
    let (registry, clock) = registry(2);
    let layer = BackoffLayer::new(registry.clone());
    let upstream = Upstream::new();
    trip_and_wait(&registry, &clock);

    let first = upstream.start(&layer).unwrap();
    assert!(!registry.should_backoff(KEY));
    let second = upstream.start(&layer).unwrap();
    assert!(registry.should_backoff(KEY));
    assert!(upstream.start(&layer).is_err());
    assert_eq!(upstream.calls(), 2);
    drop((first, second));
}

#[test]
fn without_probes_every_call_goes_through_when_the_backoff_ends() {
    let (registry, clock) = registry(0);
    let layer = BackoffLayer::new(registry.clone());
    let upstream = Upstream::new();
    trip_and_wait(&registry, &clock);

    let calls: Vec<_> = (0..5).map(|_| upstream.start(&layer).unwrap()).collect();
    assert_eq!(upstream.calls(), 5);
    drop(calls);
}

#[test]
fn a_successful_probe_ends_probing_even_when_successes_do_not_clear() {
    let (registry, clock) = registry(1);
    let mut receiver = registry.subscribe();
    let layer = BackoffLayer::new(registry.clone()).clear_on_success(false);
    let upstream = Upstream::new();
    trip_and_wait(&registry, &clock);
    events(&mut receiver);

    let probe = upstream.start(&layer).unwrap();
    upstream.answer(StatusCode::OK);
    finish(probe).unwrap();

    // The probing is over, but the failures were not cleared.
    let key: Arc<str> = KEY.into();
    let finished = BackoffEvent::ProbeFinished {
        key,
        result: ProbeResult::Succeeded,
    };
    assert_eq!(events(&mut receiver).last(), Some(&finished));
    assert_eq!(registry.stats(KEY).failures_in_window, 3);
    assert!(!registry.snapshot()[0].probing);

    // Calls go ahead again, several at once.
    let calls: Vec<_> = (0..3).map(|_| upstream.start_ready(&layer)).collect();
    for call in calls {
        assert_eq!(finish(call).unwrap().status(), StatusCode::OK);
    }
    assert_eq!(upstream.calls(), 4);
}

#[tokio::test]
async fn track_without_clearing_also_ends_probing() {
    let (registry, clock) = registry(1);
    trip_and_wait(&registry, &clock);

    let probe: Result<(), TrackError<()>> = registry
        .track(KEY, async { Ok(()) })
        .clear_on_success(false)
        .await;
    assert_eq!(probe, Ok(()));

    // A day later the key is neither probing nor in backoff; its failures have aged
    // out on their own.
    clock.advance(secs(24 * 3600));
    assert!(registry.check(KEY).is_ok());
    assert!(registry.snapshot().is_empty());
}
