//! The limiters inside one worker (`governor`, no I/O).
//!
//! - front: the whole limit. A worker that alone reaches it knows the fleet has no
//!   slot sooner, without asking Redis.
//! - fallback: the limit divided by the expected number of workers, used only while
//!   Redis cannot be reached: conservative, never unlimited.

use super::Limit;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

pub struct Local {
    front: DefaultDirectRateLimiter,
    fallback: DefaultDirectRateLimiter,
    fallback_period: Duration,
    clock: DefaultClock,
}

fn quota(period: Duration, burst: u32) -> Quota {
    Quota::with_period(period)
        .expect("a limit's period is positive")
        .allow_burst(NonZeroU32::new(burst.max(1)).expect("at least 1"))
}

fn cells(requests: u32) -> NonZeroU32 {
    NonZeroU32::new(requests).unwrap_or(NonZeroU32::MIN)
}

impl Local {
    pub fn new(limit: Limit, expected_workers: u32) -> Self {
        let period = Duration::from_secs(1) / limit.per_second.max(1);
        let workers = expected_workers.max(1);
        let fallback_period = period * workers;
        Local {
            front: RateLimiter::direct(quota(period, limit.burst)),
            fallback: RateLimiter::direct(quota(fallback_period, limit.burst / workers)),
            fallback_period,
            clock: DefaultClock::default(),
        }
    }

    /// `None`: within this worker's share of the front limit (`requests` cells are
    /// taken). `Some(wait)`: this worker alone used the whole limit for that long.
    pub fn front_wait(&self, requests: u32) -> Option<Duration> {
        match self.front.check_n(cells(requests)) {
            Ok(Ok(())) => None,
            Ok(Err(not_until)) => Some(not_until.wait_time_from(self.clock.now())),
            // More than the burst: never at once, so at the pace of one cell.
            Err(_) => self.front_wait(1),
        }
    }

    /// Takes `requests` cells of the fallback share, waiting at most `budget`.
    /// `Some(waited)` when taken, `None` when it would take longer.
    pub async fn fallback(&self, budget: Duration, requests: u32) -> Option<Duration> {
        let mut waited = Duration::ZERO;
        loop {
            let not_until = match self.fallback.check_n(cells(requests)) {
                Ok(Ok(())) => return Some(waited),
                Ok(Err(not_until)) => not_until,
                // More than this worker's share holds at once: never.
                Err(_) => return None,
            };
            // Other tasks may take the cell first: sleep to the next one, a little
            // apart from them, and try again, until the budget is spent.
            let wait = not_until.wait_time_from(self.clock.now())
                + self.fallback_period.mul_f64(rand::random::<f64>() / 2.0);
            if waited + wait > budget {
                return None;
            }
            tokio::time::sleep(wait).await;
            waited += wait;
        }
    }

    pub fn fallback_period(&self) -> Duration {
        self.fallback_period
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_front_lets_a_burst_through_then_paces() {
        let l = Local::new(
            Limit {
                per_second: 50,
                burst: 5,
            },
            3,
        );
        for _ in 0..5 {
            assert_eq!(l.front_wait(1), None);
        }
        let wait = l.front_wait(1).expect("the sixth waits");
        assert!(wait <= Duration::from_millis(20), "{wait:?}");
    }

    #[tokio::test]
    async fn the_fallback_is_a_share_and_never_unlimited() {
        let l = Local::new(
            Limit {
                per_second: 30,
                burst: 3,
            },
            3,
        );
        // A share of 10/s with a burst of 1: the first goes, the second must wait
        // about 100 ms, so a budget of 10 ms refuses it.
        assert_eq!(l.fallback(Duration::ZERO, 1).await, Some(Duration::ZERO));
        assert_eq!(l.fallback(Duration::from_millis(10), 1).await, None);
        let waited = l
            .fallback(Duration::from_secs(1), 1)
            .await
            .expect("within 1 s");
        assert!(waited >= Duration::from_millis(80), "{waited:?}");
    }
}
