//! The store's counting filters stay exact through every kind of state change.
//!
//! A filter that counted a key too few times would let a call through to a key in
//! backoff; one that counted too many would only cost speed, but would never recover.
//! Random runs of every operation that changes a key check both filters against the
//! map after each step.

use std::time::Duration;

use proptest::prelude::*;

use super::{BackoffRegistry, Mode};
use crate::classify::Outcome;
use crate::clock::ManualClock;
use crate::escalation::Escalation;
use crate::hashing::Lookup;
use crate::rule::Rule;

const KEYS: [&str; 5] = [
    "a.example",
    "b.example",
    "c.example",
    "d.example",
    "e.example",
];

#[derive(Debug, Clone)]
enum Step {
    Fail(usize),
    Succeed(usize),
    Clear(usize),
    Force(usize, u64),
    Release(usize),
    Hold(usize, u64),
    /// A call through the admission path, finished with an outcome or dropped.
    Call(usize, Option<Outcome>),
    Rule(usize, u32),
    Advance(u64),
    Prune,
}

fn step() -> impl Strategy<Value = Step> {
    let key = 0..KEYS.len();
    let seconds = 0..400_u64;
    let outcome = prop_oneof![
        Just(None),
        Just(Some(Outcome::Success)),
        Just(Some(Outcome::Failure)),
        Just(Some(Outcome::Neutral)),
    ];
    prop_oneof![
        4 => key.clone().prop_map(Step::Fail),
        1 => key.clone().prop_map(Step::Succeed),
        1 => key.clone().prop_map(Step::Clear),
        1 => (key.clone(), seconds.clone()).prop_map(|(k, s)| Step::Force(k, s)),
        1 => key.clone().prop_map(Step::Release),
        1 => (key.clone(), seconds.clone()).prop_map(|(k, s)| Step::Hold(k, s)),
        3 => (key.clone(), outcome).prop_map(|(k, o)| Step::Call(k, o)),
        1 => (key, 1..4_u32).prop_map(|(k, t)| Step::Rule(k, t)),
        2 => seconds.prop_map(Step::Advance),
        1 => Just(Step::Prune),
    ]
}

fn registry(clock: &ManualClock) -> BackoffRegistry {
    BackoffRegistry::builder()
        .clock(clock.clone())
        .threshold(2)
        .backoff(Duration::from_secs(60))
        .escalation(Escalation::new(2.0, Duration::from_secs(300)))
        .probes(1)
        // Small enough that inserts evict keys in backoff too.
        .max_keys(3)
        .build()
        .expect("valid settings")
}

fn run(registry: &BackoffRegistry, clock: &ManualClock, step: Step) {
    let seconds = Duration::from_secs;
    match step {
        Step::Fail(k) => registry.record_failure(KEYS[k]),
        Step::Succeed(k) => registry.record_success(KEYS[k]),
        Step::Clear(k) => registry.clear(KEYS[k]),
        Step::Force(k, s) => registry.force_backoff(KEYS[k], clock.now() + seconds(s)),
        Step::Release(k) => drop(registry.release(KEYS[k])),
        Step::Hold(k, s) => registry.hold_until(KEYS[k], clock.now() + seconds(s)),
        Step::Call(k, outcome) => {
            let Ok(ticket) = registry.admit(Lookup::new(KEYS[k]), Mode::Enforce) else {
                return;
            };
            match outcome {
                Some(outcome) => registry.record_outcome(KEYS[k], ticket, outcome, true),
                None => registry.abandon(KEYS[k], ticket),
            }
        }
        Step::Rule(k, threshold) => {
            let rule = Rule::default().threshold(threshold);
            registry.set_rule(KEYS[k], rule).expect("a valid rule");
        }
        Step::Advance(s) => clock.advance(seconds(s)),
        Step::Prune => drop(registry.prune()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn both_filters_count_exactly_what_the_map_holds(
        steps in proptest::collection::vec(step(), 1..80)
    ) {
        let clock = ManualClock::new();
        let registry = registry(&clock);
        for step in steps {
            run(&registry, &clock, step);
            registry.shared.store.assert_filters_exact();
        }
    }
}

#[test]
fn a_key_is_gated_from_its_trip_until_it_is_forgotten() {
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let store = &registry.shared.store;
    let hash = |key| crate::filter::KeyHash::from_hash(crate::hashing::hash_text(key));

    registry.record_failure("a.example");
    assert!(store.may_hold(hash("a.example")));
    assert!(!store.may_be_gated(hash("a.example")));

    registry.record_failure("a.example");
    assert!(store.may_be_gated(hash("a.example")));
    store.assert_filters_exact();

    registry.clear("a.example");
    assert!(!store.may_hold(hash("a.example")));
    assert!(!store.may_be_gated(hash("a.example")));
    store.assert_filters_exact();
}
