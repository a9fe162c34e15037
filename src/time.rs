//! Saturating time arithmetic and the registry's compact time representation.
//!
//! The registry stores every point in time as a `u64` count of nanoseconds since an
//! epoch taken from its clock when it was built (a [`Tick`]). That is half the size of
//! an [`Instant`], fits an atomic, and makes every comparison a plain integer one. All
//! conversions saturate: nothing here can panic, whatever the inputs.

use std::time::{Duration, Instant};

/// Nanoseconds since the registry's epoch. `u64::MAX` means "never" (about 584 years).
pub(crate) type Tick = u64;

/// Converts a duration to whole nanoseconds, saturating at `u64::MAX`.
pub(crate) fn duration_to_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Adds `duration` to `instant`, returning the latest representable instant instead of
/// panicking when the sum overflows the platform's `Instant`.
pub(crate) fn saturating_add(instant: Instant, duration: Duration) -> Instant {
    if let Some(sum) = instant.checked_add(duration) {
        return sum;
    }

    // Overflow only happens for durations of centuries; walk down to the largest step
    // that still fits. Each halving keeps what was already added.
    let mut reached = instant;
    let mut step = duration;
    while !step.is_zero() {
        match reached.checked_add(step) {
            Some(next) => reached = next,
            None => step /= 2,
        }
    }
    reached
}

/// Maps [`Instant`]s to [`Tick`]s and back, relative to a fixed epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeline {
    epoch: Instant,
}

impl Timeline {
    /// Creates a timeline whose tick 0 is `epoch`.
    pub(crate) fn starting_at(epoch: Instant) -> Self {
        Self { epoch }
    }

    /// Converts an instant to ticks. Instants before the epoch (a clock that went
    /// backwards past the registry's creation) map to tick 0.
    pub(crate) fn tick(&self, at: Instant) -> Tick {
        duration_to_nanos(at.saturating_duration_since(self.epoch))
    }

    /// Converts ticks back to an instant, saturating where the platform cannot
    /// represent it.
    pub(crate) fn instant(&self, tick: Tick) -> Instant {
        saturating_add(self.epoch, Duration::from_nanos(tick))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_saturate_at_u64_nanos() {
        assert_eq!(duration_to_nanos(Duration::from_nanos(7)), 7);
        assert_eq!(duration_to_nanos(Duration::MAX), u64::MAX);
    }

    #[test]
    fn saturating_add_never_panics() {
        let now = Instant::now();
        assert_eq!(
            saturating_add(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        let far = saturating_add(now, Duration::MAX);
        assert!(far > now + Duration::from_secs(1_000_000_000));
    }

    #[test]
    fn timeline_round_trips_and_clamps_before_epoch() {
        let epoch = Instant::now();
        let timeline = Timeline::starting_at(epoch + Duration::from_secs(1));
        let later = epoch + Duration::from_millis(1_500);
        assert_eq!(timeline.tick(later), 500_000_000);
        assert_eq!(timeline.instant(500_000_000), later);
        assert_eq!(timeline.tick(epoch), 0);
    }
}
