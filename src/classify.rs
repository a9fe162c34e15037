//! Deciding what a finished call says about its key's health.

use http::StatusCode;
use tower::BoxError;

use crate::error::BackoffError;
use crate::registry::Outcome;

/// Classifies a response status: 5xx and 429 (Too Many Requests) are failures, every
/// other status is a success.
pub(crate) fn classify_status(status: StatusCode) -> Outcome {
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Outcome::Failure
    } else {
        Outcome::Success
    }
}

/// Classifies an error from the inner service: a failure, unless it is another
/// backoff layer refusing the call, which says nothing about the host's health.
pub(crate) fn classify_error(error: &BoxError) -> Outcome {
    if error.is::<BackoffError>() {
        Outcome::Neutral
    } else {
        Outcome::Failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_and_429_are_failures() {
        assert_eq!(
            classify_status(StatusCode::INTERNAL_SERVER_ERROR),
            Outcome::Failure
        );
        assert_eq!(
            classify_status(StatusCode::SERVICE_UNAVAILABLE),
            Outcome::Failure
        );
        assert_eq!(
            classify_status(StatusCode::TOO_MANY_REQUESTS),
            Outcome::Failure
        );
        assert_eq!(classify_status(StatusCode::OK), Outcome::Success);
        assert_eq!(classify_status(StatusCode::NOT_FOUND), Outcome::Success);
        assert_eq!(
            classify_status(StatusCode::MOVED_PERMANENTLY),
            Outcome::Success
        );
    }

    #[test]
    fn nested_backoff_errors_are_neutral() {
        let nested: BoxError = Box::new(BackoffError::new(
            "h",
            std::time::Instant::now(),
            std::time::Instant::now(),
        ));
        assert_eq!(classify_error(&nested), Outcome::Neutral);
        assert_eq!(classify_error(&BoxError::from("refused")), Outcome::Failure);
    }
}
