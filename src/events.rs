//! State changes worth telling the outside world about, and where they are reported.
//!
//! The registry collects an [`Event`] while it holds a shard lock and reports it only
//! after the lock is released, so a slow subscriber can never stall other keys.

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use httpdate::HttpDate;

/// Why a key went into backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TripCause {
    /// Failures inside the window reached the threshold.
    Threshold,
    /// The server asked for a pause (for example with `Retry-After`).
    ServerHint,
}

impl TripCause {
    fn as_str(self) -> &'static str {
        match self {
            Self::Threshold => "threshold",
            Self::ServerHint => "server hint",
        }
    }
}

/// A state change of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event<'a> {
    /// The key went into backoff.
    Tripped {
        key: &'a str,
        failures: usize,
        until: Instant,
        /// `until` on the wall clock, if `SystemTime` can represent it.
        until_wall: Option<SystemTime>,
        /// How long the backoff lasts from the moment of the trip.
        backoff: Duration,
        cause: TripCause,
    },
    /// A key already in backoff was held there for longer.
    Extended {
        key: &'a str,
        until: Instant,
        until_wall: Option<SystemTime>,
        /// How long the backoff now lasts from this moment.
        backoff: Duration,
        cause: TripCause,
    },
    /// A success cleared a key that had been in backoff.
    Recovered { key: &'a str },
    /// A call was refused because the key is in backoff.
    ShortCircuited {
        key: &'a str,
        until: Instant,
        retry_after: Duration,
    },
}

/// Reports `event` as a `tracing` event: info for trips, extensions and recoveries,
/// debug for each refused call. Only the key is logged, never paths, queries, userinfo
/// or headers.
pub(crate) fn emit(event: &Event<'_>) {
    match *event {
        Event::Tripped {
            key,
            failures,
            until_wall,
            backoff,
            cause,
            ..
        } => tracing::info!(
            key,
            failures,
            until = %WallTime(until_wall),
            backoff_secs = backoff.as_secs_f64(),
            cause = cause.as_str(),
            "key entered backoff"
        ),
        Event::Extended {
            key,
            until_wall,
            backoff,
            cause,
            ..
        } => tracing::info!(
            key,
            until = %WallTime(until_wall),
            backoff_secs = backoff.as_secs_f64(),
            cause = cause.as_str(),
            "key backoff extended"
        ),
        Event::Recovered { key } => tracing::info!(key, "key recovered"),
        Event::ShortCircuited {
            key, retry_after, ..
        } => tracing::debug!(
            key,
            retry_after_secs = retry_after.as_secs_f64(),
            "call short-circuited"
        ),
    }
}

/// A deadline on the wall clock, shown as an HTTP date (one-second resolution), or as
/// `out of range` when it is before 1970 or after 9999 (a saturated backoff).
struct WallTime(Option<SystemTime>);

/// Seconds from the Unix epoch to 10000-01-01, the first moment an HTTP date cannot
/// show.
const HTTP_DATE_END: u64 = 253_402_300_800;

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since_epoch = self.0.and_then(|at| at.duration_since(UNIX_EPOCH).ok());
        match since_epoch {
            Some(elapsed) if elapsed.as_secs() < HTTP_DATE_END => {
                let at = UNIX_EPOCH + elapsed;
                fmt::Display::fmt(&HttpDate::from(at), f)
            }
            Some(_) | None => f.write_str("out of range"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_times_show_as_http_dates_and_never_panic() {
        let example = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let show = |at| WallTime(at).to_string();
        assert_eq!(show(Some(example)), "Sun, 06 Nov 1994 08:49:37 GMT");
        let last = UNIX_EPOCH + Duration::from_secs(HTTP_DATE_END - 1);
        assert_eq!(show(Some(last)), "Fri, 31 Dec 9999 23:59:59 GMT");
        let end = UNIX_EPOCH + Duration::from_secs(HTTP_DATE_END);
        assert_eq!(show(Some(end)), "out of range");
        assert_eq!(show(None), "out of range");
    }

    #[test]
    fn times_before_the_epoch_do_not_panic() {
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(WallTime(Some(before)).to_string(), "out of range");
    }
}
