//! The registry's semantics, one test per rule, driven by a `ManualClock`.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use url_backoff_registry::{BackoffRegistry, ConfigError, ManualClock, Rule, Stats, MAX_THRESHOLD};

const KEY: &str = "api.example.com";

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn registry(window: u64, threshold: u32, backoff: u64) -> (BackoffRegistry, ManualClock) {
    let clock = ManualClock::new();
    let registry = BackoffRegistry::builder()
        .window(secs(window))
        .threshold(threshold)
        .backoff(secs(backoff))
        .clock(clock.clone())
        .build()
        .unwrap();
    (registry, clock)
}

fn default_registry() -> (BackoffRegistry, ManualClock) {
    registry(30, 3, 120)
}

fn fail_times(registry: &BackoffRegistry, key: &str, times: usize) {
    for _ in 0..times {
        registry.record_failure(key);
    }
}

// 1. The window is inclusive.

#[test]
fn failures_exactly_one_window_apart_are_counted_together() {
    let (registry, clock) = registry(30, 2, 120);
    registry.record_failure(KEY);
    clock.advance(secs(30));
    let second = clock.now();
    registry.record_failure(KEY);

    assert!(registry.should_backoff(KEY));
    assert_eq!(registry.next_retry_at(KEY), Some(second + secs(120)));
}

#[test]
fn failures_more_than_one_window_apart_are_not() {
    let (registry, clock) = registry(30, 2, 120);
    registry.record_failure(KEY);
    clock.advance(secs(31));
    registry.record_failure(KEY);

    assert!(!registry.should_backoff(KEY));
    let stats = registry.stats(KEY);
    assert_eq!(stats.failures_in_window, 1);
    assert!(!stats.in_backoff);
    assert_eq!(stats.backoff_until, None);
}

// 2. Tripping at the threshold.

#[test]
fn the_failure_that_reaches_the_threshold_trips_the_key() {
    let (registry, clock) = default_registry();
    registry.record_failure(KEY);
    clock.advance(secs(5));
    registry.record_failure(KEY);
    assert!(!registry.should_backoff(KEY));
    assert_eq!(registry.stats(KEY).failures_in_window, 2);

    clock.advance(secs(5));
    let trip_time = clock.now();
    registry.record_failure(KEY);

    let stats = registry.stats(KEY);
    assert_eq!(stats.failures_in_window, 3);
    assert!(stats.in_backoff);
    assert_eq!(stats.backoff_until, Some(trip_time + secs(120)));
}

#[test]
fn a_threshold_of_one_trips_on_the_first_failure() {
    let (registry, clock) = registry(30, 1, 10);
    registry.record_failure(KEY);
    assert_eq!(registry.next_retry_at(KEY), Some(clock.now() + secs(10)));
}

// 3. The deadline is exclusive.

#[test]
fn backoff_ends_exactly_at_the_deadline() {
    let (registry, clock) = default_registry();
    let start = clock.now();
    fail_times(&registry, KEY, 3);

    clock.advance(secs(120) - Duration::from_nanos(1));
    assert!(registry.should_backoff(KEY));
    assert_eq!(registry.next_retry_at(KEY), Some(start + secs(120)));

    clock.advance(Duration::from_nanos(1));
    assert!(!registry.should_backoff(KEY));
    assert!(registry.check(KEY).is_ok());
    assert_eq!(registry.next_retry_at(KEY), None);
    let stats = registry.stats(KEY);
    assert!(!stats.in_backoff);
    assert_eq!(stats.backoff_until, None);
}

// 4. Failures during backoff never move the deadline.

#[test]
fn failures_during_backoff_are_counted_but_never_move_the_deadline() {
    let (registry, clock) = registry(300, 3, 120);
    let start = clock.now();
    fail_times(&registry, KEY, 3);

    clock.advance(secs(10));
    fail_times(&registry, KEY, 2);
    clock.advance(secs(100));
    registry.record_failure(KEY);

    let stats = registry.stats(KEY);
    assert_eq!(stats.backoff_until, Some(start + secs(120)));
    assert_eq!(stats.failures_in_window, 3);
}

#[test]
fn a_shorter_rule_during_backoff_does_not_pull_the_deadline_in() {
    let (registry, clock) = default_registry();
    let start = clock.now();
    fail_times(&registry, KEY, 3);

    registry
        .set_rule(KEY, Rule::default().threshold(1).backoff(secs(1)))
        .unwrap();
    clock.advance(secs(5));
    registry.record_failure(KEY);

    assert_eq!(registry.next_retry_at(KEY), Some(start + secs(120)));
}

// 5. History survives a trip and its expiry.

#[test]
fn history_kept_after_expiry_trips_the_key_again() {
    let (registry, clock) = registry(100, 3, 10);
    let start = clock.now();
    fail_times(&registry, KEY, 3);
    assert_eq!(registry.next_retry_at(KEY), Some(start + secs(10)));

    clock.advance(secs(11));
    assert!(!registry.should_backoff(KEY));
    registry.record_failure(KEY);

    assert!(registry.should_backoff(KEY));
    assert_eq!(registry.next_retry_at(KEY), Some(start + secs(21)));
}

// 6. `clear`, and queries on unknown keys.

#[test]
fn clear_forgets_failures_and_backoff_but_keeps_the_rule() {
    let (registry, clock) = default_registry();
    registry
        .set_rule(KEY, Rule::default().threshold(1))
        .unwrap();
    registry.record_failure(KEY);
    assert!(registry.should_backoff(KEY));

    registry.clear(KEY);
    assert_eq!(registry.stats(KEY), Stats::default());
    assert!(!registry.should_backoff(KEY));
    assert!(registry.keys().is_empty());
    assert_eq!(registry.len(), 0);

    // The rule (threshold 1) still applies.
    registry.record_failure(KEY);
    assert_eq!(registry.next_retry_at(KEY), Some(clock.now() + secs(120)));
}

#[test]
fn queries_on_unknown_keys_report_zeros_and_create_nothing() {
    let (registry, _clock) = default_registry();
    let stats = registry.stats("unknown.example");
    assert_eq!(stats.failures_in_window, 0);
    assert!(!stats.in_backoff);
    assert_eq!(stats.backoff_until, None);
    assert!(!registry.should_backoff("unknown.example"));
    assert_eq!(registry.next_retry_at("unknown.example"), None);
    registry.clear("unknown.example");

    assert_eq!(registry.len(), 0);
    assert!(registry.is_empty());
    assert!(registry.keys().is_empty());
}

// 7. Rules.

#[test]
fn a_rule_overrides_only_the_fields_it_sets() {
    let (registry, clock) = default_registry();
    registry
        .set_rule(KEY, Rule::default().threshold(1))
        .unwrap();
    registry.record_failure(KEY);
    assert_eq!(registry.next_retry_at(KEY), Some(clock.now() + secs(120)));

    // Window still 30 s: a failure 31 s old is out of it.
    clock.advance(secs(31));
    assert_eq!(registry.stats(KEY).failures_in_window, 0);
}

#[test]
fn a_rule_window_changes_which_failures_count() {
    let (registry, clock) = default_registry();
    registry
        .set_rule(KEY, Rule::default().window(secs(10)))
        .unwrap();
    fail_times(&registry, KEY, 2);
    clock.advance(secs(11));
    registry.record_failure(KEY);

    assert!(!registry.should_backoff(KEY));
    assert_eq!(registry.stats(KEY).failures_in_window, 1);
    assert_eq!(registry.stats("other").failures_in_window, 0);
}

#[test]
fn a_second_rule_replaces_the_first() {
    let (registry, clock) = default_registry();
    registry
        .set_rule(KEY, Rule::default().threshold(1))
        .unwrap();
    registry
        .set_rule(KEY, Rule::default().backoff(secs(5)))
        .unwrap();

    // The threshold is back to the default of 3; the backoff is 5 s.
    fail_times(&registry, KEY, 2);
    assert!(!registry.should_backoff(KEY));
    registry.record_failure(KEY);
    assert_eq!(registry.next_retry_at(KEY), Some(clock.now() + secs(5)));
}

#[test]
fn clear_rule_reverts_to_defaults_and_leaves_state_alone() {
    let (registry, clock) = default_registry();
    registry
        .set_rule(KEY, Rule::default().threshold(1).backoff(secs(7)))
        .unwrap();
    registry.record_failure(KEY);
    let until = clock.now() + secs(7);

    registry.clear_rule(KEY);
    let stats = registry.stats(KEY);
    assert_eq!(stats.failures_in_window, 1);
    assert_eq!(stats.backoff_until, Some(until));

    // After the backoff, defaults apply: one more failure (2 in the window) is not
    // enough; a third is.
    clock.advance(secs(7));
    registry.record_failure(KEY);
    assert!(!registry.should_backoff(KEY));
    registry.record_failure(KEY);
    assert_eq!(registry.next_retry_at(KEY), Some(clock.now() + secs(120)));
}

// 8. `keys`.

#[test]
fn keys_lists_exactly_the_live_keys() {
    let (registry, clock) = default_registry();
    registry.record_failure("counting.example");
    fail_times(&registry, "tripped.example", 3);
    registry.set_rule("ruled.example", Rule::default()).unwrap();
    assert_eq!(registry.keys(), ["counting.example", "tripped.example"]);

    // Past the window: only the key in backoff is left.
    clock.advance(secs(31));
    assert_eq!(registry.keys(), ["tripped.example"]);

    // Past the backoff: nothing.
    clock.advance(secs(90));
    assert!(registry.keys().is_empty());
}

// 9. Configuration errors and extreme durations.

#[test]
fn invalid_builder_settings_are_config_errors() {
    let build = |window: Duration, threshold: u32, backoff: Duration| {
        BackoffRegistry::builder()
            .window(window)
            .threshold(threshold)
            .backoff(backoff)
            .build()
            .map(|_| ())
    };
    assert_eq!(build(secs(1), 0, secs(1)), Err(ConfigError::ZeroThreshold));
    assert_eq!(
        build(Duration::ZERO, 1, secs(1)),
        Err(ConfigError::ZeroWindow)
    );
    assert_eq!(
        build(secs(1), 1, Duration::ZERO),
        Err(ConfigError::ZeroBackoff)
    );
    assert_eq!(
        build(secs(1), MAX_THRESHOLD + 1, secs(1)),
        Err(ConfigError::ThresholdTooLarge {
            threshold: MAX_THRESHOLD + 1,
            max: MAX_THRESHOLD
        })
    );
    assert_eq!(build(secs(1), MAX_THRESHOLD, secs(1)), Ok(()));
}

#[test]
fn config_errors_have_readable_messages() {
    assert_eq!(
        ConfigError::ZeroThreshold.to_string(),
        "threshold must be at least 1"
    );
    assert_eq!(
        ConfigError::ThresholdTooLarge {
            threshold: 70_000,
            max: 65_536
        }
        .to_string(),
        "threshold 70000 is larger than the maximum of 65536"
    );
}

#[test]
fn an_invalid_rule_is_rejected_and_changes_nothing() {
    let (registry, clock) = default_registry();
    registry
        .set_rule(KEY, Rule::default().threshold(1))
        .unwrap();

    let rejected = [
        (Rule::default().threshold(0), ConfigError::ZeroThreshold),
        (
            Rule::default().window(Duration::ZERO),
            ConfigError::ZeroWindow,
        ),
        (
            Rule::default().backoff(Duration::ZERO),
            ConfigError::ZeroBackoff,
        ),
    ];
    for (rule, error) in rejected {
        assert_eq!(registry.set_rule(KEY, rule), Err(error));
    }

    // The earlier rule (threshold 1) is still in force.
    registry.record_failure(KEY);
    assert_eq!(registry.next_retry_at(KEY), Some(clock.now() + secs(120)));
}

#[test]
fn maximal_durations_saturate_instead_of_panicking() {
    let clock = ManualClock::new();
    let registry = BackoffRegistry::builder()
        .window(Duration::MAX)
        .threshold(2)
        .backoff(Duration::MAX)
        .clock(clock.clone())
        .build()
        .unwrap();

    registry.record_failure(KEY);
    clock.advance(secs(1_000_000_000));
    registry.record_failure(KEY);
    assert_eq!(registry.stats(KEY).failures_in_window, 2);
    assert!(registry.should_backoff(KEY));
    let until = registry.next_retry_at(KEY).unwrap();
    assert!(until > clock.now() + secs(1_000_000_000));

    clock.advance(Duration::MAX);
    clock.advance(Duration::MAX);
    registry.record_failure(KEY);
    let _ = registry.stats(KEY);
    let _ = registry.keys();
    assert!(!registry.should_backoff(KEY));
}

#[test]
fn maximal_durations_in_a_rule_saturate_too() {
    let (registry, clock) = default_registry();
    let rule = Rule::default()
        .threshold(1)
        .window(Duration::MAX)
        .backoff(Duration::MAX);
    registry.set_rule(KEY, rule).unwrap();
    registry.record_failure(KEY);

    clock.advance(secs(10 * 365 * 24 * 3600));
    assert!(registry.should_backoff(KEY));
    assert_eq!(registry.stats(KEY).failures_in_window, 1);
}

// 10. Concurrency.

#[test]
fn concurrent_failures_are_never_lost() {
    let (registry, _clock) = registry(30, 20_000, 120);
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let registry = registry.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                fail_times(&registry, KEY, 2_000);
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }

    let stats = registry.stats(KEY);
    assert_eq!(stats.failures_in_window, 16_000);
    assert!(!stats.in_backoff);
}

#[test]
fn clones_share_state() {
    let (registry, _clock) = default_registry();
    let clone = registry.clone();
    fail_times(&clone, KEY, 3);
    assert!(registry.should_backoff(KEY));
    registry.clear(KEY);
    assert!(!clone.should_backoff(KEY));
}

// 11. Memory per key is bounded by the threshold.

#[test]
fn only_the_most_recent_threshold_failures_are_remembered() {
    let (registry, _clock) = registry(30, 5, 120);
    fail_times(&registry, KEY, 10_000);
    assert_eq!(registry.stats(KEY).failures_in_window, 5);

    let (registry, _clock) = default_registry();
    fail_times(&registry, KEY, 1_000);
    assert_eq!(registry.stats(KEY).failures_in_window, 3);
}

#[test]
fn debug_output_names_the_settings() {
    let (registry, _clock) = default_registry();
    registry.record_failure(KEY);
    let debug = format!("{registry:?}");
    assert_eq!(
        debug,
        "BackoffRegistry { window: 30s, threshold: 3, backoff: 120s, max_keys: 250000, \
         entries: 1, rules: 0, .. }"
    );
}
