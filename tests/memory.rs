//! Bounded memory: stale keys are dropped, and `max_keys` is a hard cap that evicts
//! in a fixed order.

use std::time::Duration;

use url_backoff_registry::{BackoffRegistry, ConfigError, ManualClock, Rule};

const TRIPPED: &str = "tripped.example";

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn registry(max_keys: usize) -> (BackoffRegistry, ManualClock) {
    let clock = ManualClock::new();
    let registry = BackoffRegistry::builder()
        .max_keys(max_keys)
        .clock(clock.clone())
        .build()
        .unwrap();
    (registry, clock)
}

fn trip(registry: &BackoffRegistry, key: &str) {
    for _ in 0..3 {
        registry.record_failure(key);
    }
}

fn host(number: usize) -> String {
    format!("host-{number}.example")
}

#[test]
fn keys_age_out_and_prune_releases_them() {
    let (registry, clock) = registry(1_000_000);
    trip(&registry, TRIPPED);
    for number in 0..100_000 {
        registry.record_failure(&host(number));
    }
    assert_eq!(registry.keys().len(), 100_001);
    assert_eq!(registry.len(), 100_001);

    clock.advance(secs(31));
    assert_eq!(registry.keys(), [TRIPPED]);
    assert_eq!(registry.prune(), 100_000);
    assert_eq!(registry.len(), 1);

    clock.advance(secs(90));
    assert!(registry.keys().is_empty());
    assert_eq!(registry.prune(), 1);
    assert_eq!(registry.len(), 0);
}

#[test]
fn a_flood_of_new_keys_never_exceeds_the_cap_nor_evicts_a_backoff() {
    let (registry, clock) = registry(10_000);
    let start = clock.now();
    trip(&registry, TRIPPED);

    for number in 0..100_000 {
        registry.record_failure(&host(number));
        assert!(registry.len() <= 10_000, "{} keys", registry.len());
    }

    clock.advance(secs(1));
    assert!(registry.should_backoff(TRIPPED));
    assert_eq!(registry.next_retry_at(TRIPPED), Some(start + secs(120)));
    assert!(registry.keys().len() <= 10_000);
    // The newest hosts are the ones kept.
    assert_eq!(registry.stats(&host(99_999)).failures_in_window, 1);
}

#[test]
fn eviction_drops_stale_then_idle_healthy_then_backoffs_ending_first() {
    let (registry, clock) = registry(4);
    registry.record_failure("stale");
    clock.advance(secs(31));
    registry.record_failure("healthy-older");
    clock.advance(secs(1));
    registry.record_failure("healthy-newer");
    trip(&registry, "backoff-long");
    assert_eq!(registry.len(), 4);

    // Room for one more: the stale key goes first.
    registry.record_failure("new-1");
    assert_eq!(
        registry.keys(),
        ["backoff-long", "healthy-newer", "healthy-older", "new-1"]
    );

    // Then the healthy key idle longest.
    clock.advance(secs(1));
    registry.record_failure("new-2");
    assert_eq!(
        registry.keys(),
        ["backoff-long", "healthy-newer", "new-1", "new-2"]
    );

    // Fill the registry with backoffs; healthy keys go before any of them.
    registry
        .set_rule("backoff-short", Rule::default().backoff(secs(10)))
        .unwrap();
    trip(&registry, "backoff-short");
    trip(&registry, "backoff-mid");
    assert_eq!(
        registry.keys(),
        ["backoff-long", "backoff-mid", "backoff-short", "new-2"]
    );
    registry.record_failure("new-3");
    assert_eq!(
        registry.keys(),
        ["backoff-long", "backoff-mid", "backoff-short", "new-3"]
    );

    // Only backoffs left: the one ending soonest is evicted.
    trip(&registry, "backoff-new");
    assert_eq!(
        registry.keys(),
        [
            "backoff-long",
            "backoff-mid",
            "backoff-new",
            "backoff-short"
        ]
    );
    trip(&registry, "backoff-newest");
    assert_eq!(
        registry.keys(),
        [
            "backoff-long",
            "backoff-mid",
            "backoff-new",
            "backoff-newest"
        ]
    );
}

#[test]
fn rules_survive_eviction() {
    let (registry, clock) = registry(2);
    registry
        .set_rule("ruled", Rule::default().threshold(1))
        .unwrap();
    registry.record_failure("ruled");
    assert!(registry.should_backoff("ruled"));
    registry.clear("ruled");

    registry.record_failure("a");
    registry.record_failure("b");
    registry.record_failure("c");
    assert_eq!(registry.len(), 2);

    registry.record_failure("ruled");
    assert_eq!(
        registry.next_retry_at("ruled"),
        Some(clock.now() + secs(120))
    );
}

#[test]
fn growth_sweeps_stale_keys_without_being_asked() {
    let (registry, clock) = registry(1_000_000);
    for number in 0..2_000 {
        registry.record_failure(&host(number));
    }
    clock.advance(secs(31));

    for number in 2_000..4_100 {
        registry.record_failure(&host(number));
    }

    // The 2,000 stale keys were swept when the map reached twice its size at the
    // previous sweep (2,048); without sweeping it would hold 4,100.
    assert_eq!(registry.len(), 2_100);
    assert_eq!(registry.keys().len(), 2_100);
    assert_eq!(registry.prune(), 0);
}

#[test]
fn setting_a_rule_forgets_a_key_whose_failures_all_aged_out() {
    let (registry, clock) = registry(100);
    registry.record_failure("quiet");
    registry.record_failure("busy");
    clock.advance(secs(31));
    registry.record_failure("busy");

    registry
        .set_rule("quiet", Rule::default().window(secs(100)))
        .unwrap();
    registry
        .set_rule("busy", Rule::default().window(secs(100)))
        .unwrap();

    // "quiet" had nothing left in its window and is forgotten; "busy" was live, so
    // the larger window now counts both of its failures.
    assert_eq!(registry.stats("quiet").failures_in_window, 0);
    assert_eq!(registry.stats("busy").failures_in_window, 2);
    assert_eq!(registry.len(), 1);
}

#[test]
fn zero_max_keys_is_a_config_error() {
    let error = BackoffRegistry::builder().max_keys(0).build().unwrap_err();
    assert_eq!(error, ConfigError::ZeroMaxKeys);
    assert_eq!(error.to_string(), "max_keys must be at least 1");
}
