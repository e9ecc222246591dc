//! The delay ladder: the delay queues (`worker.retry_delays_ms`) as rungs, shortest
//! first. Every wait in a delay queue (retry, park, deferral, check-back) is one rung,
//! chosen here, so a command is only ever published to a queue that is declared.

use std::time::Duration;

/// One delay queue, by its delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rung(u64);

impl Rung {
    pub fn ms(self) -> u64 {
        self.0
    }

    pub fn delay(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder {
    /// Ascending, no duplicates, never empty.
    rungs: Vec<u64>,
}

impl Ladder {
    /// `delays_ms`: the configured delays (validated non-empty and non-zero).
    pub fn new(delays_ms: &[u64]) -> Self {
        let mut rungs = delays_ms.to_vec();
        rungs.sort_unstable();
        rungs.dedup();
        assert!(
            !rungs.is_empty(),
            "worker.retry_delays_ms is validated non-empty"
        );
        Ladder { rungs }
    }

    fn bottom(&self) -> Rung {
        Rung(self.rungs[0])
    }

    fn top(&self) -> Rung {
        Rung(self.rungs[self.rungs.len() - 1])
    }

    /// The wait before `attempt` (2 for the first retry): one rung up per attempt, so the
    /// delays grow in tiers, then the top rung.
    pub fn for_attempt(&self, attempt: u32) -> Rung {
        let i = (attempt.saturating_sub(2) as usize).min(self.rungs.len() - 1);
        Rung(self.rungs[i])
    }

    /// The shortest rung that waits at least `wait` (whole milliseconds); the top one if
    /// none does.
    pub fn at_least(&self, wait: Duration) -> Rung {
        let ms = wait.as_millis() as u64;
        self.rungs
            .iter()
            .copied()
            .find(|d| *d >= ms)
            .map_or(self.top(), Rung)
    }

    /// The longest rung that does not overshoot `wait` (whole milliseconds); the bottom
    /// one if all do.
    pub fn at_most(&self, wait: Duration) -> Rung {
        let ms = wait.as_millis() as u64;
        self.rungs
            .iter()
            .copied()
            .rfind(|d| *d <= ms)
            .map_or(self.bottom(), Rung)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rungs_are_sorted_and_unique() {
        let l = Ladder::new(&[3000, 250, 1000, 250]);
        assert_eq!(l.rungs, vec![250, 1000, 3000]);
    }

    #[test]
    fn attempts_climb_one_rung_each_then_stay_on_top() {
        let l = Ladder::new(&[250, 1000, 3000]);
        let got: Vec<u64> = (0..7).map(|a| l.for_attempt(a).ms()).collect();
        assert_eq!(got, vec![250, 250, 250, 1000, 3000, 3000, 3000]);
    }

    #[test]
    fn at_least_takes_the_first_rung_that_covers_the_wait() {
        let l = Ladder::new(&[250, 1000, 3000]);
        assert_eq!(l.at_least(ms(0)).ms(), 250);
        assert_eq!(l.at_least(ms(250)).ms(), 250);
        assert_eq!(l.at_least(ms(251)).ms(), 1000);
        assert_eq!(l.at_least(ms(3000)).ms(), 3000);
        assert_eq!(l.at_least(ms(9000)).ms(), 3000, "none covers it: the top");
        // Whole milliseconds, as the configured delays are.
        assert_eq!(l.at_least(Duration::from_micros(1_000_900)).ms(), 1000);
    }

    #[test]
    fn at_most_takes_the_longest_rung_that_does_not_overshoot() {
        let l = Ladder::new(&[250, 1000, 3000]);
        assert_eq!(l.at_most(ms(100)).ms(), 250, "all overshoot: the bottom");
        assert_eq!(l.at_most(ms(250)).ms(), 250);
        assert_eq!(l.at_most(ms(2999)).ms(), 1000);
        assert_eq!(l.at_most(ms(3000)).ms(), 3000);
        assert_eq!(l.at_most(ms(60_000)).ms(), 3000);
    }

    #[test]
    fn a_rung_is_its_delay() {
        let r = Ladder::new(&[1500]).for_attempt(2);
        assert_eq!(r.delay(), ms(1500));
    }
}
