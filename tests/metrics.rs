//! Metrics through the `metrics` crate: counters per event, gauges of keys, and a
//! capped `key` label.
#![cfg(feature = "metrics")]

use std::collections::BTreeMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use url_backoff_registry::{BackoffRegistry, ManualClock, MetricsOptions};

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// Runs `work` with a fresh recorder and returns every metric as
/// `name{label=value,...}` with its value.
fn recorded(work: impl FnOnce()) -> BTreeMap<String, f64> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, work);

    let mut metrics = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Vec<_> = key
            .labels()
            .map(|label| format!("{}={}", label.key(), label.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let value = match value {
            DebugValue::Counter(count) => count as f64,
            DebugValue::Gauge(gauge) => gauge.into_inner(),
            DebugValue::Histogram(_) => unreachable!("no histograms are recorded"),
        };
        metrics.insert(name, value);
    }
    metrics
}

fn registry(clock: &ManualClock, options: MetricsOptions) -> BackoffRegistry {
    BackoffRegistry::builder()
        .threshold(1)
        .backoff(secs(10))
        .metrics(options)
        .clock(clock.clone())
        .build()
        .unwrap()
}

#[test]
fn events_are_counted_and_keys_gauged() {
    let clock = ManualClock::new();
    let metrics = recorded(|| {
        let registry = registry(&clock, MetricsOptions::default());
        registry.record_failure("a.example");
        registry.record_failure("b.example");
        for _ in 0..3 {
            let _ = registry.check("a.example");
            let _ = futures_now(registry.track("a.example", async { Ok::<_, ()>(()) }));
        }
        registry.record_failure("healthy.example");
        clock.advance(secs(10));
        let _ = futures_now(registry.track("b.example", async { Ok::<_, ()>(()) }));
        registry.refresh_metrics();
    });

    let expected = [
        ("url_backoff_keys{}", 2.0),
        ("url_backoff_keys_in_backoff{}", 0.0),
        ("url_backoff_recoveries_total{}", 1.0),
        ("url_backoff_short_circuits_total{shadow=false}", 3.0),
        ("url_backoff_trips_total{cause=threshold}", 3.0),
    ];
    let expected: BTreeMap<String, f64> = expected
        .iter()
        .map(|(name, value)| (name.to_string(), *value))
        .collect();
    assert_eq!(metrics, expected);
}

#[test]
fn the_gauge_of_keys_in_backoff_follows_deadlines() {
    let clock = ManualClock::new();
    let registry = registry(&clock, MetricsOptions::default());
    let gauge = |work: &dyn Fn()| recorded(work)["url_backoff_keys_in_backoff{}"];

    assert_eq!(gauge(&|| registry.record_failure("a.example")), 1.0);
    assert_eq!(gauge(&|| registry.record_failure("b.example")), 2.0);
    assert_eq!(gauge(&|| registry.clear("a.example")), 1.0);
    clock.advance(secs(10));
    assert_eq!(gauge(&|| registry.refresh_metrics()), 0.0);
}

#[test]
fn key_labels_are_capped() {
    let clock = ManualClock::new();
    let metrics = recorded(|| {
        let registry = registry(&clock, MetricsOptions::default().key_labels(2));
        for key in [
            "a.example",
            "b.example",
            "c.example",
            "d.example",
            "a.example",
        ] {
            registry.force_backoff(key, clock.now() + secs(1));
        }
    });

    let trips: BTreeMap<_, _> = metrics
        .into_iter()
        .filter(|(name, _)| name.starts_with("url_backoff_trips_total"))
        .collect();
    let expected = [
        ("url_backoff_trips_total{key=a.example,cause=forced}", 2.0),
        ("url_backoff_trips_total{key=b.example,cause=forced}", 1.0),
        ("url_backoff_trips_total{key=other,cause=forced}", 2.0),
    ];
    let expected: BTreeMap<String, f64> = expected
        .iter()
        .map(|(name, value)| (name.to_string(), *value))
        .collect();
    assert_eq!(trips, expected);
}

/// Polls a future that is ready at once.
fn futures_now<F: std::future::Future>(future: F) -> F::Output {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("the future was not ready"),
    }
}
