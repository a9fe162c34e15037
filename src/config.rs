//! [`Config`]: everything the layer and the reqwest middleware share: the registry,
//! the key extractor and the rules that judge a finished call.

use std::fmt;
use std::time::Duration;

use tower::BoxError;

use crate::future::Report;
use crate::judge::Judge;
use crate::key_buf::KeyBuf;
use crate::key_cache::DerivedKey;
use crate::registry::{BackoffRegistry, Mode, Ticket};

/// Where to record the outcome of an admitted request (`None` for a request that is not
/// tracked: it has no key, or it would be refused in shadow mode), or the refusal, a
/// boxed [`BackoffError`](crate::BackoffError).
pub(crate) type Admission<C> = Result<Option<Report<C>>, BoxError>;

/// The registry a guard reports to, how it picks a key, and how it judges outcomes.
#[derive(Clone)]
pub(crate) struct Config<K, C> {
    pub(crate) registry: BackoffRegistry,
    pub(crate) extractor: K,
    pub(crate) judge: Judge<C>,
    /// Whether refusals are only reported, never enforced.
    pub(crate) shadow: bool,
}

impl<K, C> Config<K, C> {
    pub(crate) fn new(registry: BackoffRegistry, extractor: K, classifier: C) -> Self {
        Self {
            registry,
            extractor,
            judge: Judge::new(classifier),
            shadow: false,
        }
    }

    pub(crate) fn with_extractor<L>(self, extractor: L) -> Config<L, C> {
        Config {
            registry: self.registry,
            extractor,
            judge: self.judge,
            shadow: self.shadow,
        }
    }

    pub(crate) fn with_classifier<D>(self, classifier: D) -> Config<K, D> {
        Config {
            registry: self.registry,
            extractor: self.extractor,
            judge: self.judge.with_classifier(classifier),
            shadow: self.shadow,
        }
    }

    pub(crate) fn clear_on_success(mut self, clear: bool) -> Self {
        self.judge.clear_on_success = clear;
        self
    }

    pub(crate) fn respect_retry_after(mut self, respect: bool) -> Self {
        self.judge.respect_retry_after = respect;
        self
    }

    pub(crate) fn max_retry_after(mut self, max: Duration) -> Self {
        self.judge.max_retry_after = max;
        self
    }

    pub(crate) fn shadow(mut self, shadow: bool) -> Self {
        self.shadow = shadow;
        self
    }

    /// How the registry should treat a refusal.
    pub(crate) fn mode(&self) -> Mode {
        match self.shadow {
            true => Mode::Shadow,
            false => Mode::Enforce,
        }
    }
}

impl<K, C: Clone> Config<K, C> {
    /// Where to record the outcome of a call to `key`, admitted with `ticket`.
    #[inline]
    pub(crate) fn report(&self, key: KeyBuf, ticket: Ticket) -> Report<C> {
        Report::new(&self.registry, key, ticket, &self.judge)
    }

    /// Asks the registry whether a call to `key` may go ahead.
    pub(crate) fn admit(&self, key: DerivedKey<'_>) -> Admission<C> {
        match self.registry.admit(key.lookup(), self.mode()) {
            Ok(ticket) => Ok(Some(self.report(key.into_key_buf(), ticket))),
            // Shadow mode: the refusal was reported; the call runs, and its outcome is
            // not recorded, so the registry evolves exactly as it would if enforcing.
            Err(_) if self.shadow => Ok(None),
            Err(backoff) => Err(backoff.into()),
        }
    }
}

impl<K, C> fmt::Debug for Config<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("registry", &self.registry)
            .field("extractor", &std::any::type_name::<K>())
            .field("judge", &self.judge)
            .field("shadow", &self.shadow)
            .finish()
    }
}
