//! Turning a [`BackoffError`] into the HTTP response a server or proxy sends instead.

use http::header::RETRY_AFTER;
use http::{HeaderValue, Response, StatusCode};

use crate::error::BackoffError;

impl BackoffError {
    /// Returns the whole seconds a client should wait: the backoff left when the call
    /// was refused, rounded up so that a client never comes back early.
    ///
    /// ```
    /// use url_backoff_registry::{BackoffRegistry, ManualClock, Rule};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let registry = BackoffRegistry::builder().clock(clock.clone()).build().unwrap();
    /// let rule = Rule::default().threshold(1).backoff(Duration::from_secs(10));
    /// registry.set_rule("h", rule).unwrap();
    /// registry.record_failure("h");
    /// clock.advance(Duration::from_millis(2_500));
    /// assert_eq!(registry.check("h").unwrap_err().retry_after_secs(), 8);
    /// ```
    pub fn retry_after_secs(&self) -> u64 {
        let left = self.retry_after();
        left.as_secs()
            .saturating_add(u64::from(left.subsec_nanos() > 0))
    }

    /// Builds the response a proxy or server answers with while the host is in
    /// backoff: `503 Service Unavailable` with a `Retry-After` header holding
    /// [`retry_after_secs`](Self::retry_after_secs), and an empty body.
    ///
    /// It names neither the key nor the upstream, so nothing about the backend leaks
    /// to the client. The body type only needs `Default` (axum's `Body`,
    /// `http_body_util::Full`, `String`, ...).
    ///
    /// ```
    /// use http::StatusCode;
    /// use url_backoff_registry::{BackoffRegistry, Rule};
    ///
    /// let registry = BackoffRegistry::new();
    /// registry.set_rule("upstream:8080", Rule::default().threshold(1)).unwrap();
    /// registry.record_failure("upstream:8080");
    ///
    /// let response = registry.check("upstream:8080").unwrap_err().to_response::<String>();
    /// assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    /// assert_eq!(response.headers()["retry-after"], "120");
    /// assert_eq!(response.body(), "");
    /// ```
    pub fn to_response<B: Default>(&self) -> Response<B> {
        let mut response = Response::new(B::default());
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        let seconds = HeaderValue::from(self.retry_after_secs());
        response.headers_mut().insert(RETRY_AFTER, seconds);
        response
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn refused(left: Duration) -> BackoffError {
        let now = Instant::now();
        BackoffError::new("h", now + left, now)
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(refused(Duration::from_secs(30)).retry_after_secs(), 30);
        assert_eq!(
            refused(Duration::from_millis(29_001)).retry_after_secs(),
            30
        );
        assert_eq!(refused(Duration::from_nanos(1)).retry_after_secs(), 1);
    }

    #[test]
    fn the_response_is_503_with_retry_after() {
        let response = refused(Duration::from_millis(1_500)).to_response::<Vec<u8>>();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let values: Vec<_> = response.headers().get_all(RETRY_AFTER).iter().collect();
        assert_eq!(values, ["2"]);
        assert_eq!(response.headers().len(), 1);
        assert!(response.body().is_empty());
    }
}
