//! The bounded record of one key's recent failures.

use std::collections::VecDeque;

use crate::time::Tick;

/// The most recent failures of one key, oldest first, at most `limit` of them.
///
/// Deciding whether "`threshold` failures happened within `window`" only needs the
/// `threshold` most recent failure times, so that is all that is kept: memory per key
/// is bounded by the threshold, whatever the failure rate. Times are kept sorted even
/// if the clock steps backwards, so counting the failures inside a window is a binary
/// search.
#[derive(Debug, Clone, Default)]
pub(crate) struct FailureHistory {
    times: VecDeque<Tick>,
}

impl FailureHistory {
    /// Records a failure at `at`, keeping at most the `limit` most recent ones.
    pub(crate) fn record(&mut self, at: Tick, limit: usize) {
        let limit = limit.max(1);
        while self.times.len() >= limit {
            if self.times.front().is_some_and(|&oldest| at < oldest) {
                // Older than everything kept and no room left: it cannot change
                // any decision the kept failures do not already make.
                return;
            }
            self.times.pop_front();
        }

        let position = self.times.partition_point(|&time| time <= at);
        self.times.insert(position, at);
    }

    /// Counts the failures `f` with `now - f <= window`; failures stamped after `now`
    /// (a clock that stepped backwards) count as inside.
    pub(crate) fn count_within(&self, now: Tick, window: Tick) -> usize {
        let oldest_inside = now.saturating_sub(window);
        let outside = self.times.partition_point(|&time| time < oldest_inside);
        self.times.len() - outside
    }

    /// Returns the newest failure time, if any.
    pub(crate) fn newest(&self) -> Option<Tick> {
        self.times.back().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(times: &[Tick], limit: usize) -> FailureHistory {
        let mut history = FailureHistory::default();
        for &time in times {
            history.record(time, limit);
        }
        history
    }

    #[test]
    fn keeps_only_the_most_recent_failures() {
        let history = history(&[1, 2, 3, 4, 5], 3);
        assert_eq!(history.times, [3, 4, 5]);
    }

    #[test]
    fn window_bound_is_inclusive() {
        let history = history(&[10, 20, 30], 10);
        assert_eq!(history.count_within(40, 30), 3);
        assert_eq!(history.count_within(41, 30), 2);
        assert_eq!(history.count_within(61, 30), 0);
    }

    #[test]
    fn out_of_order_times_stay_sorted_and_future_times_count() {
        let history = history(&[50, 20, 40], 10);
        assert_eq!(history.times, [20, 40, 50]);
        assert_eq!(history.count_within(30, 5), 2);
    }

    #[test]
    fn a_full_history_ignores_failures_older_than_all_it_keeps() {
        let history = history(&[10, 20, 5], 2);
        assert_eq!(history.times, [10, 20]);
    }
}
