//! Time sources: the [`Clock`] trait, the default [`SystemClock`] and the test
//! [`ManualClock`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::time::{duration_to_nanos, saturating_add};

/// A source of the current time for a [`BackoffRegistry`](crate::BackoffRegistry).
///
/// The registry reads the clock whenever it needs "now": to timestamp a failure, to
/// decide whether a deadline has passed, and to age failures out of the window.
/// Implementations must be cheap; the registry avoids reading the clock on paths that
/// do not need it.
pub trait Clock: Send + Sync + 'static {
    /// Returns the current time.
    fn now(&self) -> Instant;

    /// Returns the current wall-clock time, used to turn an HTTP date (a `Retry-After`
    /// header, a log line's deadline) into a point on [`now`](Self::now)'s timeline.
    ///
    /// Defaults to [`SystemTime::now`].
    fn system_now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The default clock: the system's monotonic time, as seen by tokio.
///
/// It reads [`tokio::time::Instant::now`], which is the same as
/// [`std::time::Instant::now`] in production. In tests that pause tokio's clock
/// (`#[tokio::test(start_paused = true)]` with tokio's `test-util` feature), it follows
/// the paused time, so `tokio::time::advance` moves the registry's time too. Its wall
/// clock is [`SystemTime::now`], which tokio's paused time does not move.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// A clock that only moves when told to, for tests.
///
/// Clones share one time: advancing any clone advances them all, so a test can keep a
/// clone while the registry owns another.
///
/// Its wall clock ([`system_now`](Self::system_now)) starts at the current system
/// time rounded down to a whole second and moves with [`advance`](Self::advance), so
/// an HTTP date (which has one-second resolution) made from it converts back exactly.
///
/// ```
/// use std::time::Duration;
/// use url_backoff_registry::ManualClock;
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// let shared = clock.clone();
/// shared.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), start + Duration::from_secs(5));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    start: Instant,
    system_start: SystemTime,
    elapsed_nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// Creates a clock that reads the current system time until it is advanced.
    pub fn new() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            start: Instant::now(),
            system_start: UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs()),
            elapsed_nanos: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Returns the clock's current time.
    pub fn now(&self) -> Instant {
        saturating_add(self.start, self.elapsed())
    }

    /// Returns the clock's current wall-clock time.
    pub fn system_now(&self) -> SystemTime {
        // `SystemTime` holds far more than the 584 years `elapsed` can reach on every
        // common platform; should one fall short, stay at the start rather than panic.
        let start = self.system_start;
        start.checked_add(self.elapsed()).unwrap_or(start)
    }

    /// Moves the clock forward by `by`, saturating at the largest representable time.
    pub fn advance(&self, by: Duration) {
        let by = duration_to_nanos(by);
        let _ = self
            .elapsed_nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |elapsed| {
                Some(elapsed.saturating_add(by))
            });
    }

    fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.elapsed_nanos.load(Ordering::Acquire))
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        ManualClock::now(self)
    }

    fn system_now(&self) -> SystemTime {
        ManualClock::system_now(self)
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &self.elapsed())
            .finish()
    }
}
