//! Deciding what a finished call says about its key's health: [`Outcome`], the
//! replaceable [`Classify`] trait and the [`DefaultClassifier`].

use std::error::Error;

use http::{HeaderMap, StatusCode};

/// What a finished call says about the health of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The host is healthy: the key's failures and backoff are cleared.
    Success,
    /// The host failed: a failure is recorded, and a `Retry-After` hint on the response
    /// is honoured.
    Failure,
    /// The call says nothing about the host: nothing is recorded.
    Neutral,
}

/// Decides the [`Outcome`] of a response or of an error from the wrapped client.
///
/// [`BackoffLayer::classifier`](crate::BackoffLayer::classifier) replaces the
/// [`DefaultClassifier`] with your own. Any closure
/// `Fn(StatusCode, &HeaderMap) -> Outcome` is a classifier too (annotate its parameter
/// types, as below, so the compiler sees that it takes any `&HeaderMap`); it counts
/// every client error as a failure.
///
/// The classifier is cloned into each request's response future, so keep it cheap to
/// clone (share large state through an `Arc`).
///
/// A [`BackoffError`](crate::BackoffError) from another backoff layer or middleware
/// further in never reaches the classifier: it always counts as nothing.
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use url_backoff_registry::{BackoffLayer, BackoffRegistry, Classify, DefaultClassifier, Outcome};
///
/// // An API that answers 404 while it is being redeployed: treat that as a failure,
/// // and everything else as the default rules do.
/// let classifier = |status: StatusCode, headers: &HeaderMap| {
///     if status == StatusCode::NOT_FOUND {
///         Outcome::Failure
///     } else {
///         DefaultClassifier.classify_response(status, headers)
///     }
/// };
/// let outcome = classifier.classify_response(StatusCode::NOT_FOUND, &HeaderMap::new());
/// assert_eq!(outcome, Outcome::Failure);
/// let layer = BackoffLayer::new(BackoffRegistry::new()).classifier(classifier);
/// # drop(layer);
/// ```
pub trait Classify {
    /// Returns the outcome of a call that produced a response with this status and
    /// these headers.
    fn classify_response(&self, status: StatusCode, headers: &HeaderMap) -> Outcome;

    /// Returns the outcome of a call that failed with `error` (a connection error, a
    /// timeout inside the layer, ...). By default every error is a failure.
    fn classify_error(&self, error: &(dyn Error + 'static)) -> Outcome {
        let _ = error;
        Outcome::Failure
    }
}

/// The default rules: 5xx, 429 (Too Many Requests) and 408 (Request Timeout) are
/// failures, every other status is a success, and every client error is a failure.
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use url_backoff_registry::{Classify, DefaultClassifier, Outcome};
///
/// let headers = HeaderMap::new();
/// let outcome = |status| DefaultClassifier.classify_response(status, &headers);
/// assert_eq!(outcome(StatusCode::BAD_GATEWAY), Outcome::Failure);
/// assert_eq!(outcome(StatusCode::TOO_MANY_REQUESTS), Outcome::Failure);
/// assert_eq!(outcome(StatusCode::REQUEST_TIMEOUT), Outcome::Failure);
/// assert_eq!(outcome(StatusCode::NOT_FOUND), Outcome::Success);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultClassifier;

impl DefaultClassifier {
    /// Returns the default outcome of a status: failure for 5xx, 429 and 408, success
    /// otherwise.
    #[inline]
    pub fn classify_status(status: StatusCode) -> Outcome {
        let failed = status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT;
        if failed {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }
}

impl Classify for DefaultClassifier {
    #[inline]
    fn classify_response(&self, status: StatusCode, _headers: &HeaderMap) -> Outcome {
        Self::classify_status(status)
    }
}

impl<F> Classify for F
where
    F: Fn(StatusCode, &HeaderMap) -> Outcome,
{
    fn classify_response(&self, status: StatusCode, headers: &HeaderMap) -> Outcome {
        self(status, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: u16) -> Outcome {
        let status = StatusCode::from_u16(status).unwrap();
        DefaultClassifier.classify_response(status, &HeaderMap::new())
    }

    #[test]
    fn server_errors_429_and_408_are_failures() {
        for status in [500, 501, 502, 503, 504, 599, 429, 408] {
            assert_eq!(outcome(status), Outcome::Failure, "{status}");
        }
    }

    #[test]
    fn every_other_status_is_a_success() {
        for status in [100, 200, 204, 301, 304, 400, 401, 403, 404, 409, 410, 499] {
            assert_eq!(outcome(status), Outcome::Success, "{status}");
        }
    }

    #[test]
    fn client_errors_are_failures_by_default() {
        let error = std::io::Error::other("connection reset");
        assert_eq!(DefaultClassifier.classify_error(&error), Outcome::Failure);
    }

    #[test]
    fn closures_classify_responses_and_count_errors_as_failures() {
        let all_neutral = |_: StatusCode, _: &HeaderMap| Outcome::Neutral;
        assert_eq!(
            all_neutral.classify_response(StatusCode::BAD_GATEWAY, &HeaderMap::new()),
            Outcome::Neutral
        );
        let error = std::io::Error::other("refused");
        assert_eq!(all_neutral.classify_error(&error), Outcome::Failure);
    }
}
