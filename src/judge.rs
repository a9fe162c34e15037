//! Turning a finished call into what the registry records: the classifier's
//! [`Outcome`], the success switch, and the server's `Retry-After` hint.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use http::{HeaderMap, StatusCode};

use crate::classify::{Classify, Outcome};
use crate::error::BackoffError;
use crate::pending::Pending;
use crate::retry_after::{retry_after, DEFAULT_MAX_RETRY_AFTER};

/// The rules that judge a finished call, shared by the tower layer and the reqwest
/// middleware.
#[derive(Clone)]
pub(crate) struct Judge<C> {
    pub(crate) classifier: C,
    pub(crate) clear_on_success: bool,
    pub(crate) respect_retry_after: bool,
    pub(crate) max_retry_after: Duration,
}

/// What the registry should record for one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Verdict<'a> {
    outcome: Outcome,
    /// Whether a success clears the key.
    clear_on_success: bool,
    /// The headers of a failed response whose `Retry-After` hint is to be respected;
    /// read only when the outcome is recorded.
    hint: Option<&'a HeaderMap>,
    max_retry_after: Duration,
}

impl<C> Judge<C> {
    pub(crate) fn new(classifier: C) -> Self {
        Self {
            classifier,
            clear_on_success: true,
            respect_retry_after: true,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        }
    }

    /// Keeps the settings and swaps the classifier.
    pub(crate) fn with_classifier<D>(self, classifier: D) -> Judge<D> {
        Judge {
            classifier,
            clear_on_success: self.clear_on_success,
            respect_retry_after: self.respect_retry_after,
            max_retry_after: self.max_retry_after,
        }
    }
}

impl<C: Classify> Judge<C> {
    /// Judges a response. A failure carries its headers, for the `Retry-After` hint,
    /// if hints are respected.
    #[inline]
    pub(crate) fn response<'a>(&self, status: StatusCode, headers: &'a HeaderMap) -> Verdict<'a> {
        let outcome = self.classifier.classify_response(status, headers);
        let hint = (outcome == Outcome::Failure && self.respect_retry_after).then_some(headers);
        self.verdict(outcome, hint)
    }

    /// Judges an error. A refusal by a backoff layer further in counts as nothing,
    /// whatever the classifier says: it is not news about the host.
    #[inline(never)]
    pub(crate) fn error(&self, error: &(dyn Error + 'static)) -> Verdict<'static> {
        let outcome = if BackoffError::find(error).is_some() {
            Outcome::Neutral
        } else {
            self.classifier.classify_error(error)
        };
        self.verdict(outcome, None)
    }

    #[inline]
    fn verdict<'a>(&self, outcome: Outcome, hint: Option<&'a HeaderMap>) -> Verdict<'a> {
        Verdict {
            outcome,
            clear_on_success: self.clear_on_success,
            hint,
            max_retry_after: self.max_retry_after,
        }
    }
}

impl Verdict<'_> {
    /// Records the verdict for the admitted call `pending`: the outcome first, then
    /// the server's hint, so that the later of the two deadlines wins.
    #[inline]
    pub(crate) fn record(self, pending: &mut Pending) {
        pending.finish(self.outcome, self.clear_on_success, |registry| {
            let headers = self.hint?;
            retry_after(headers, || registry.system_now(), self.max_retry_after)
        });
    }
}

impl<C> fmt::Debug for Judge<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Judge")
            .field("classifier", &std::any::type_name::<C>())
            .field("clear_on_success", &self.clear_on_success)
            .field("respect_retry_after", &self.respect_retry_after)
            .field("max_retry_after", &self.max_retry_after)
            .finish()
    }
}
