//! Model-based property test: random operations run against the registry and against
//! a small reference model written for clarity, not speed; every answer must match.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use proptest::prelude::*;
use url_backoff_registry::{BackoffRegistry, ManualClock, Rule, TrackError};

const KEYS: [&str; 3] = ["a.example", "b.example", "c.example"];

/// Registry-wide defaults used by every case.
const DEFAULTS: Policy = Policy {
    window: 30_000_000_000,
    threshold: 3,
    backoff: 120_000_000_000,
};

// ---------------------------------------------------------------------------------
// The reference model. Times are nanoseconds since the start, saturating at u64::MAX
// exactly as a `ManualClock` does.

#[derive(Debug, Clone, Copy, PartialEq)]
struct Policy {
    window: u64,
    threshold: u32,
    backoff: u64,
}

#[derive(Debug, Default, Clone)]
struct ModelKey {
    /// Remembered failure times, oldest first: the newest `threshold` of them.
    failures: Vec<u64>,
    /// End of the last backoff; 0 if never tripped.
    until: u64,
}

#[derive(Debug, Default)]
struct Model {
    now: u64,
    rules: HashMap<&'static str, Policy>,
    keys: BTreeMap<&'static str, ModelKey>,
}

impl Model {
    fn policy(&self, key: &str) -> Policy {
        self.rules.get(key).copied().unwrap_or(DEFAULTS)
    }

    fn failures_in_window(&self, key: &str) -> usize {
        let window = self.policy(key).window;
        self.keys.get(key).map_or(0, |state| {
            let inside = |&&time: &&u64| self.now < time || self.now - time <= window;
            state.failures.iter().filter(inside).count()
        })
    }

    fn in_backoff(&self, key: &str) -> bool {
        self.keys
            .get(key)
            .is_some_and(|state| self.now < state.until)
    }

    fn is_live(&self, key: &str) -> bool {
        self.in_backoff(key) || self.failures_in_window(key) > 0
    }

    fn record_failure(&mut self, key: &'static str) {
        let policy = self.policy(key);
        let now = self.now;
        let state = self.keys.entry(key).or_default();
        state.failures.push(now);
        state.failures.sort_unstable();
        let excess = state
            .failures
            .len()
            .saturating_sub(policy.threshold as usize);
        state.failures.drain(..excess);

        if self.in_backoff(key) {
            return;
        }
        if self.failures_in_window(key) >= policy.threshold as usize {
            let state = self.keys.get_mut(key).unwrap();
            state.until = state.until.max(now.saturating_add(policy.backoff));
        }
    }

    fn forget_if_stale(&mut self, key: &'static str) {
        if !self.is_live(key) {
            self.keys.remove(key);
        }
    }

    fn live_keys(&self) -> Vec<String> {
        let keys = self.keys.keys().filter(|key| self.is_live(key));
        keys.map(|key| key.to_string()).collect()
    }
}

// ---------------------------------------------------------------------------------
// Operations.

#[derive(Debug, Clone)]
enum Op {
    Fail(usize),
    TrackOk { key: usize, clear: bool },
    TrackErr(usize),
    Clear(usize),
    SetRule { key: usize, rule: RuleSpec },
    ClearRule(usize),
    Advance(Duration),
    Prune,
    Query(usize),
    Keys,
}

#[derive(Debug, Clone, Copy)]
struct RuleSpec {
    window: Option<Duration>,
    threshold: Option<u32>,
    backoff: Option<Duration>,
}

impl RuleSpec {
    fn rule(self) -> Rule {
        let mut rule = Rule::default();
        if let Some(window) = self.window {
            rule = rule.window(window);
        }
        if let Some(threshold) = self.threshold {
            rule = rule.threshold(threshold);
        }
        if let Some(backoff) = self.backoff {
            rule = rule.backoff(backoff);
        }
        rule
    }

    /// The policy the model expects, or `None` if the rule is invalid.
    fn policy(self) -> Option<Policy> {
        let nanos = |duration: Duration| u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let policy = Policy {
            window: self.window.map_or(DEFAULTS.window, nanos),
            threshold: self.threshold.unwrap_or(DEFAULTS.threshold),
            backoff: self.backoff.map_or(DEFAULTS.backoff, nanos),
        };
        let valid = policy.window > 0 && policy.backoff > 0 && policy.threshold > 0;
        valid.then_some(policy)
    }
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        Just(Duration::from_secs(1)),
        Just(Duration::from_secs(10)),
        Just(Duration::from_secs(29)),
        Just(Duration::from_secs(30)),
        Just(Duration::from_secs(31)),
        Just(Duration::from_secs(120)),
        Just(Duration::from_secs(1_000_000)),
        Just(Duration::MAX),
        (0u64..200_000_000_000).prop_map(Duration::from_nanos),
    ]
}

fn rule_spec() -> impl Strategy<Value = RuleSpec> {
    let threshold = prop_oneof![Just(0u32), 1u32..6];
    (
        proptest::option::of(duration()),
        proptest::option::of(threshold),
        proptest::option::of(duration()),
    )
        .prop_map(|(window, threshold, backoff)| RuleSpec {
            window,
            threshold,
            backoff,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    prop_oneof![
        6 => key.clone().prop_map(Op::Fail),
        2 => (key.clone(), any::<bool>()).prop_map(|(key, clear)| Op::TrackOk { key, clear }),
        2 => key.clone().prop_map(Op::TrackErr),
        1 => key.clone().prop_map(Op::Clear),
        1 => (key.clone(), rule_spec()).prop_map(|(key, rule)| Op::SetRule { key, rule }),
        1 => key.clone().prop_map(Op::ClearRule),
        4 => duration().prop_map(Op::Advance),
        1 => Just(Op::Prune),
        4 => key.prop_map(Op::Query),
        1 => Just(Op::Keys),
    ]
}

// ---------------------------------------------------------------------------------
// Running a sequence against both.

/// Polls a future that must finish on its first poll.
fn now_or_never<F: Future>(future: F) -> F::Output {
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the tracked future was ready"),
    }
}

fn run(ops: &[Op]) {
    let clock = ManualClock::new();
    let start = clock.now();
    let registry = BackoffRegistry::builder()
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut model = Model::default();
    let instant = |nanos: u64| start + Duration::from_nanos(nanos);

    for (step, op) in ops.iter().enumerate() {
        let context = format!("step {step}: {op:?}");
        match *op {
            Op::Fail(key) => {
                registry.record_failure(KEYS[key]);
                model.record_failure(KEYS[key]);
            }
            Op::TrackOk { key, clear } => {
                let key = KEYS[key];
                let tracked = registry.track(key, async { Ok::<_, ()>(()) });
                let result = now_or_never(tracked.clear_on_success(clear));
                let refused = model.in_backoff(key);
                assert_eq!(result.is_err(), refused, "{context}");
                if !refused && clear {
                    model.keys.remove(key);
                }
            }
            Op::TrackErr(key) => {
                let key = KEYS[key];
                let result = now_or_never(registry.track(key, async { Err::<(), _>(7) }));
                if model.in_backoff(key) {
                    assert!(matches!(result, Err(TrackError::Backoff(_))), "{context}");
                } else {
                    assert_eq!(result, Err(TrackError::Inner(7)), "{context}");
                    model.record_failure(key);
                }
            }
            Op::Clear(key) => {
                registry.clear(KEYS[key]);
                model.keys.remove(KEYS[key]);
            }
            Op::SetRule { key, rule } => {
                let key = KEYS[key];
                let result = registry.set_rule(key, rule.rule());
                match rule.policy() {
                    Some(policy) => {
                        assert!(result.is_ok(), "{context}");
                        model.forget_if_stale(key);
                        model.rules.insert(key, policy);
                    }
                    None => assert!(result.is_err(), "{context}"),
                }
            }
            Op::ClearRule(key) => {
                registry.clear_rule(KEYS[key]);
                model.forget_if_stale(KEYS[key]);
                model.rules.remove(KEYS[key]);
            }
            Op::Advance(by) => {
                clock.advance(by);
                let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
                model.now = model.now.saturating_add(by);
            }
            Op::Prune => {
                let stale: Vec<_> = model
                    .keys
                    .keys()
                    .copied()
                    .filter(|key| !model.is_live(key))
                    .collect();
                for key in &stale {
                    model.keys.remove(key);
                }
                assert_eq!(registry.prune(), stale.len(), "{context}");
            }
            Op::Query(key) => {
                let key = KEYS[key];
                let stats = registry.stats(key);
                let in_backoff = model.in_backoff(key);
                let until = in_backoff.then(|| instant(model.keys[key].until));
                assert_eq!(
                    stats.failures_in_window,
                    model.failures_in_window(key),
                    "{context}"
                );
                assert_eq!(stats.in_backoff, in_backoff, "{context}");
                assert_eq!(stats.backoff_until, until, "{context}");
                assert_eq!(registry.should_backoff(key), in_backoff, "{context}");
                assert_eq!(registry.next_retry_at(key), until, "{context}");
            }
            Op::Keys => {
                assert_eq!(registry.keys(), model.live_keys(), "{context}");
            }
        }
        assert_eq!(registry.len(), model.keys.len(), "{context}: len");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn registry_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(&ops);
    }
}
