//! Error types: invalid configuration, a call refused because its key is in backoff,
//! and the error of a tracked call.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tower::BoxError;

/// A configuration value that the registry cannot work with.
///
/// Returned by [`BackoffRegistryBuilder::build`](crate::BackoffRegistryBuilder::build)
/// and [`BackoffRegistry::set_rule`](crate::BackoffRegistry::set_rule); nothing is
/// changed when it is returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The threshold was 0: a key would be in backoff before it ever failed.
    #[error("threshold must be at least 1")]
    ZeroThreshold,

    /// The threshold was above [`MAX_THRESHOLD`](crate::MAX_THRESHOLD), the bound on how
    /// many failures the registry remembers per key.
    #[error("threshold {threshold} is larger than the maximum of {max}")]
    ThresholdTooLarge {
        /// The rejected threshold.
        threshold: u32,
        /// The largest accepted threshold.
        max: u32,
    },

    /// The window was zero: no two failures could ever be counted together.
    #[error("window must be longer than zero")]
    ZeroWindow,

    /// The backoff was zero: a tripped key would never actually back off.
    #[error("backoff must be longer than zero")]
    ZeroBackoff,

    /// `max_keys` was zero: the registry could not remember a single key.
    #[error("max_keys must be at least 1")]
    ZeroMaxKeys,

    /// An [`Escalation`](crate::Escalation) factor below 1 or not a finite number.
    #[error("escalation factor must be a finite number of at least 1, not {factor}")]
    InvalidEscalationFactor {
        /// The rejected factor.
        factor: f64,
    },

    /// An [`Escalation`](crate::Escalation) cap shorter than the backoff it escalates.
    #[error("escalation max_backoff must be at least the backoff")]
    EscalationCapBelowBackoff,
}

/// A call was refused because its key is in backoff.
///
/// The [`BackoffService`](crate::BackoffService) returns it boxed as a
/// [`tower::BoxError`]; find it with `downcast_ref::<BackoffError>()`.
///
/// ```
/// use std::time::Duration;
/// use url_backoff_registry::{BackoffRegistry, Rule};
///
/// let registry = BackoffRegistry::new();
/// registry.set_rule("api.example.com", Rule::default().threshold(1)).unwrap();
/// registry.record_failure("api.example.com");
///
/// let error = registry.check("api.example.com").unwrap_err();
/// assert_eq!(error.key(), "api.example.com");
/// assert!(error.retry_after() <= Duration::from_secs(120));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BackoffError {
    key: Arc<str>,
    until: Instant,
    retry_after: Duration,
    probing: bool,
}

impl BackoffError {
    pub(crate) fn new(key: &str, until: Instant, now: Instant) -> Self {
        Self {
            key: key.into(),
            until,
            retry_after: until.saturating_duration_since(now),
            probing: false,
        }
    }

    /// A refusal because the key's backoff is over but its probe slots are taken.
    pub(crate) fn probing(key: &str, backoff_ended: Instant) -> Self {
        Self {
            key: key.into(),
            until: backoff_ended,
            retry_after: Duration::ZERO,
            probing: true,
        }
    }

    /// Returns the key as shared text, for events.
    pub(crate) fn shared_key(&self) -> Arc<str> {
        Arc::clone(&self.key)
    }

    /// Returns the key that is in backoff.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Returns the moment the backoff ends (for a refusal while probing, the moment it
    /// ended).
    pub fn until(&self) -> Instant {
        self.until
    }

    /// Returns how long the backoff still had to run when the call was refused; zero
    /// for a refusal while probing.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// Returns whether the backoff was over and the call was refused only because the
    /// key's probe slots were taken (see
    /// [`BackoffRegistryBuilder::probes`](crate::BackoffRegistryBuilder::probes)).
    pub fn is_probing(&self) -> bool {
        self.probing
    }

    /// Finds a `BackoffError` in `error` or in the chain of its
    /// [`source`](Error::source)s.
    ///
    /// Middleware that wraps errors (a `Buffer`'s worker, your own error types) keeps
    /// the refusal findable this way.
    ///
    /// ```
    /// use url_backoff_registry::{BackoffError, BackoffRegistry, Rule};
    ///
    /// let registry = BackoffRegistry::new();
    /// registry.set_rule("api.example.com", Rule::default().threshold(1)).unwrap();
    /// registry.record_failure("api.example.com");
    /// let error: tower::BoxError = registry.check("api.example.com").unwrap_err().into();
    ///
    /// let found = BackoffError::find(&*error).unwrap();
    /// assert_eq!(found.key(), "api.example.com");
    /// assert!(BackoffError::find(&std::io::Error::other("reset")).is_none());
    /// ```
    pub fn find<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a Self> {
        let mut current = Some(error);
        while let Some(error) = current {
            if let Some(found) = error.downcast_ref::<Self>() {
                return Some(found);
            }
            current = error.source();
        }
        None
    }

    /// Returns whether `error` is, or was caused by, a refusal of a backoff layer: the
    /// predicate a retry policy needs so that it never retries one.
    ///
    /// ```
    /// use tower::BoxError;
    /// use url_backoff_registry::BackoffError;
    ///
    /// let error = BoxError::from("connection reset");
    /// assert!(!BackoffError::is_backoff(&error));
    /// ```
    pub fn is_backoff(error: &BoxError) -> bool {
        Self::find(&**error).is_some()
    }
}

impl fmt::Debug for BackoffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackoffError")
            .field("key", &self.key)
            .field("until", &self.until)
            .field("retry_after", &self.retry_after)
            .field("probing", &self.probing)
            .finish()
    }
}

impl fmt::Display for BackoffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.probing {
            return write!(f, "`{}` is waiting for a probe, retry shortly", self.key);
        }
        write!(
            f,
            "`{}` is in backoff, retry in {:.3}s",
            self.key,
            self.retry_after.as_secs_f64()
        )
    }
}

impl std::error::Error for BackoffError {}

/// The error of a call guarded by [`BackoffRegistry::track`](crate::BackoffRegistry::track).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackError<E> {
    /// The key was in backoff; the call was not started.
    #[error(transparent)]
    Backoff(BackoffError),

    /// The call ran and failed with this error; the failure was recorded.
    #[error(transparent)]
    Inner(E),
}

impl<E> TrackError<E> {
    /// Returns the backoff error if the call was refused.
    pub fn as_backoff(&self) -> Option<&BackoffError> {
        match self {
            Self::Backoff(error) => Some(error),
            Self::Inner(_) => None,
        }
    }

    /// Returns the call's own error, if it ran and failed.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Backoff(_) => None,
            Self::Inner(error) => Some(error),
        }
    }
}
