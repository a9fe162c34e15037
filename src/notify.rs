//! Where state changes are reported: `tracing`, event subscribers and (with the
//! `metrics` feature) metrics.
//!
//! The registry builds a [`BackoffEvent`] while it holds a shard lock and reports it
//! only after the lock is released. Subscribers receive events through a bounded
//! broadcast channel that never blocks the sender: a receiver that falls behind loses
//! the oldest events and is told how many, so a slow listener can never stall a call.

use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use httpdate::HttpDate;
use tokio::sync::broadcast;

use crate::event::BackoffEvent;

/// Default capacity of the event channel.
pub const DEFAULT_EVENT_CAPACITY: usize = 1_024;

/// Reports events to `tracing`, to subscribers, and to metrics.
pub(crate) struct Notifier {
    capacity: usize,
    /// Created by the first subscriber; until then events go only to `tracing`.
    sender: OnceLock<broadcast::Sender<BackoffEvent>>,
}

impl Notifier {
    /// Creates a notifier whose channel holds `capacity` (at least 1) events.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            sender: OnceLock::new(),
        }
    }

    /// Returns a receiver of every event from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<BackoffEvent> {
        self.sender
            .get_or_init(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }

    /// Reports `event`.
    pub(crate) fn notify(&self, event: BackoffEvent) {
        log(&event);

        if let Some(sender) = self.sender.get() {
            // No receivers is not an error: nobody listens right now.
            let _ = sender.send(event);
        }
    }
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subscribers = self
            .sender
            .get()
            .map_or(0, |sender| sender.receiver_count());
        f.debug_struct("Notifier")
            .field("capacity", &self.capacity)
            .field("subscribers", &subscribers)
            .finish_non_exhaustive()
    }
}

/// Logs `event`: info for trips, extensions, recoveries, releases and evictions of keys
/// in backoff; debug for refusals, probes and other evictions. Only the key is logged.
fn log(event: &BackoffEvent) {
    match event {
        BackoffEvent::Tripped {
            key,
            failures,
            until_wall,
            backoff,
            cause,
            ..
        } => tracing::info!(
            key = &**key,
            failures,
            until = %WallTime(*until_wall),
            backoff_secs = backoff.as_secs_f64(),
            cause = cause.as_str(),
            "key entered backoff"
        ),
        BackoffEvent::Extended {
            key,
            until_wall,
            backoff,
            cause,
            ..
        } => tracing::info!(
            key = &**key,
            until = %WallTime(*until_wall),
            backoff_secs = backoff.as_secs_f64(),
            cause = cause.as_str(),
            "key backoff extended"
        ),
        BackoffEvent::Recovered { key } => tracing::info!(key = &**key, "key recovered"),
        BackoffEvent::Released { key } => tracing::info!(key = &**key, "key released"),
        BackoffEvent::ShortCircuited {
            key,
            retry_after,
            probing,
            shadow,
            ..
        } => tracing::debug!(
            key = &**key,
            retry_after_secs = retry_after.as_secs_f64(),
            probing,
            shadow,
            "call short-circuited"
        ),
        BackoffEvent::ProbeAdmitted { key } => tracing::debug!(key = &**key, "probe admitted"),
        BackoffEvent::ProbeFinished { key, result } => {
            tracing::debug!(key = &**key, result = result.as_str(), "probe finished")
        }
        BackoffEvent::Evicted { key, in_backoff } => match in_backoff {
            true => tracing::info!(key = &**key, in_backoff, "key evicted"),
            false => tracing::debug!(key = &**key, in_backoff, "key evicted"),
        },
    }
}

/// The wall-clock time `from_now` after `wall_now`, if `SystemTime` can represent it.
pub(crate) fn wall_time(wall_now: SystemTime, from_now: Duration) -> Option<SystemTime> {
    wall_now.checked_add(from_now)
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
