//! Escalating backoff under a manual clock: consecutive trips multiply the backoff up
//! to a cap, health fades the multiplier, and jitter is exact with an injected source.

use std::time::Duration;

use url_backoff_registry::{
    BackoffRegistry, Escalation, Jitter, JitterSource, ManualClock, Rule, TrackError,
};

const KEY: &str = "flaky.example";

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// Always draws the same fraction.
struct Fixed(f64);

impl JitterSource for Fixed {
    fn fraction(&self) -> f64 {
        self.0
    }
}

/// Threshold 1, backoff 10 s, window 1,000 s; escalation ×2 up to 60 s when given.
fn registry(escalation: Option<Escalation>) -> (BackoffRegistry, ManualClock) {
    let clock = ManualClock::new();
    let mut builder = BackoffRegistry::builder()
        .threshold(1)
        .window(secs(1_000))
        .backoff(secs(10))
        .jitter_source(Fixed(0.25))
        .clock(clock.clone());
    if let Some(escalation) = escalation {
        builder = builder.escalation(escalation);
    }
    (builder.build().unwrap(), clock)
}

fn doubling() -> Escalation {
    Escalation::new(2.0, secs(60))
}

/// Records a failure now and returns the backoff it started (zero if none).
fn trip(registry: &BackoffRegistry, clock: &ManualClock) -> Duration {
    registry.record_failure(KEY);
    registry
        .next_retry_at(KEY)
        .map_or(Duration::ZERO, |until| until - clock.now())
}

/// Advances to the end of the current backoff.
fn wait_out(registry: &BackoffRegistry, clock: &ManualClock) {
    let until = registry.next_retry_at(KEY).unwrap();
    clock.advance(until - clock.now());
}

#[test]
fn without_escalation_every_backoff_is_the_same() {
    let (registry, clock) = registry(None);
    for _ in 0..4 {
        assert_eq!(trip(&registry, &clock), secs(10));
        wait_out(&registry, &clock);
    }
}

#[test]
fn consecutive_trips_double_up_to_the_cap() {
    let (registry, clock) = registry(Some(doubling()));
    let mut backoffs = Vec::new();
    for _ in 0..6 {
        backoffs.push(trip(&registry, &clock).as_secs());
        wait_out(&registry, &clock);
    }
    assert_eq!(backoffs, [10, 20, 40, 60, 60, 60]);
}

#[test]
fn the_multiplier_stops_at_the_cap_and_fades_from_there() {
    let (registry, clock) = registry(Some(Escalation::new(2.0, secs(20))));
    let mut seen = Vec::new();
    for _ in 0..4 {
        let backoff = trip(&registry, &clock).as_secs();
        seen.push((backoff, registry.snapshot()[0].multiplier));
        wait_out(&registry, &clock);
    }
    assert_eq!(seen, [(10, 1.0), (20, 2.0), (20, 2.0), (20, 2.0)]);

    // Two backoff lengths of health undo the one step the cap allowed.
    clock.advance(secs(20));
    assert_eq!(trip(&registry, &clock), secs(10));
}

#[test]
fn health_takes_one_step_off_per_backoff_length() {
    let (registry, clock) = registry(Some(doubling()));
    for _ in 0..3 {
        trip(&registry, &clock);
        wait_out(&registry, &clock);
    }
    // The last backoff was 40 s (level 2). 20 s of health (two backoff lengths) take
    // it down to level 0; the next trip counts one up again: 20 s.
    clock.advance(secs(20));
    assert_eq!(trip(&registry, &clock), secs(20));

    // After 30 s of health from level 1, the multiplier has faded completely and the
    // next trip starts over at the plain backoff.
    wait_out(&registry, &clock);
    clock.advance(secs(30));
    assert_eq!(trip(&registry, &clock), secs(10));
}

#[test]
fn the_snapshot_shows_trips_and_the_fading_multiplier() {
    let (registry, clock) = registry(Some(doubling()));
    for _ in 0..3 {
        trip(&registry, &clock);
        wait_out(&registry, &clock);
    }
    let entry = &registry.snapshot()[0];
    assert_eq!((entry.trips, entry.multiplier), (3, 4.0));

    clock.advance(secs(10));
    assert_eq!(registry.snapshot()[0].multiplier, 2.0);
    clock.advance(secs(10));
    let entry = &registry.snapshot()[0];
    assert_eq!(
        (entry.trips, entry.multiplier, entry.failures_in_window),
        (3, 1.0, 1)
    );
}

#[test]
fn escalation_outlives_a_success_and_then_fades() {
    let (registry, clock) = registry(Some(doubling()));
    trip(&registry, &clock);
    wait_out(&registry, &clock);
    trip(&registry, &clock);
    wait_out(&registry, &clock);

    // A success clears the failures, but the key remembers its last backoff (20 s,
    // level 1) so that a host that fails again soon does not start over at 10 s.
    let result: Result<(), TrackError<()>> = now_or_never(registry.track(KEY, async { Ok(()) }));
    assert_eq!(result, Ok(()));
    assert_eq!(registry.stats(KEY).failures_in_window, 0);
    assert!(registry.keys().is_empty());
    assert_eq!(registry.len(), 1);
    assert_eq!(registry.snapshot()[0].multiplier, 2.0);

    clock.advance(secs(5));
    assert_eq!(trip(&registry, &clock), secs(40));

    // Once it has faded, pruning forgets the key altogether.
    wait_out(&registry, &clock);
    let _ = now_or_never(registry.track(KEY, async { Ok::<_, ()>(()) }));
    clock.advance(secs(30));
    assert_eq!(registry.prune(), 1);
    assert!(registry.is_empty());
}

#[test]
fn full_jitter_scales_the_escalated_backoff() {
    let (registry, clock) = registry(Some(doubling().jitter(Jitter::Full)));
    // 10 s × 0.25, then 20 s × 0.25.
    assert_eq!(trip(&registry, &clock), Duration::from_millis(2_500));
    wait_out(&registry, &clock);
    assert_eq!(trip(&registry, &clock), secs(5));
}

#[test]
fn equal_jitter_keeps_half_and_randomises_the_rest() {
    let (registry, clock) = registry(Some(doubling().jitter(Jitter::Equal)));
    // 5 s + 5 s × 0.25, then 10 s + 10 s × 0.25.
    assert_eq!(trip(&registry, &clock), Duration::from_millis(6_250));
    wait_out(&registry, &clock);
    assert_eq!(trip(&registry, &clock), Duration::from_millis(12_500));
}

#[test]
fn rules_carry_their_own_escalation_or_none() {
    let (registry, clock) = registry(Some(doubling()));
    registry
        .set_rule(
            KEY,
            Rule::default().escalation(Escalation::new(3.0, secs(1_000))),
        )
        .unwrap();
    let mut backoffs = Vec::new();
    for _ in 0..3 {
        backoffs.push(trip(&registry, &clock).as_secs());
        wait_out(&registry, &clock);
    }
    assert_eq!(backoffs, [10, 30, 90]);

    registry
        .set_rule(KEY, Rule::default().without_escalation())
        .unwrap();
    assert_eq!(trip(&registry, &clock), secs(10));
}

#[test]
fn invalid_escalations_are_rejected_by_builder_and_rules() {
    let error = BackoffRegistry::builder()
        .escalation(Escalation::new(0.5, secs(600)))
        .build()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "escalation factor must be a finite number of at least 1, not 0.5"
    );

    let (registry, _clock) = registry(None);
    let short_cap = Rule::default().escalation(Escalation::new(2.0, secs(5)));
    let error = registry.set_rule(KEY, short_cap).unwrap_err();
    assert_eq!(
        error.to_string(),
        "escalation max_backoff must be at least the backoff"
    );
}

/// Polls a future that is ready at once.
fn now_or_never<F: std::future::Future>(future: F) -> F::Output {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("the future was not ready"),
    }
}
