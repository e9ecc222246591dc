//! The breaker: each worker counts its requests to every provider account and their
//! faults (no answer, a 5xx, an unreadable one: [`ProviderError::is_fault`]) over the
//! last `breaker.window_ms`. When enough of them failed it holds the account like an
//! operator would (`payfleet holds` shows it, by `breaker`), so commands wait instead
//! of spending their attempts on a provider that is down; status queries go on. A probe
//! (a status query, never a payment) lifts the hold once the provider answers again.
//!
//! Counting is per worker and in memory (no Redis call per request); the hold it sets
//! is fleet-wide.

use super::Handler;
use crate::config::BreakerSettings;
use crate::contract::ProviderName;
use crate::contract::hold::{Hold, HoldTarget};
use crate::providers::{ProviderError, Providers};
use crate::state::{HoldBoard, StateStore};
use crate::telemetry::Metrics;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Who the breaker's holds say set them.
pub const BY: &str = "breaker";

/// Requests and faults of one second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Second {
    at: u64,
    requests: u32,
    faults: u32,
}

/// One account's last `window` seconds, as a ring of seconds.
#[derive(Debug)]
struct Tally(Vec<Second>);

impl Tally {
    fn new(window_secs: usize) -> Self {
        Tally(vec![Second::default(); window_secs.max(1)])
    }

    fn add(&mut self, now: u64, fault: bool) {
        let len = self.0.len() as u64;
        let s = &mut self.0[(now % len) as usize];
        if s.at != now {
            *s = Second {
                at: now,
                ..Default::default()
            };
        }
        s.requests += 1;
        s.faults += u32::from(fault);
    }

    /// Requests and faults within the window ending at `now`.
    fn sum(&self, now: u64) -> (u32, u32) {
        let len = self.0.len() as u64;
        self.0
            .iter()
            .filter(|s| s.at <= now && now - s.at < len)
            .fold((0, 0), |(r, f), s| (r + s.requests, f + s.faults))
    }

    fn clear(&mut self) {
        self.0.fill(Second::default());
    }
}

/// Whether a window of `requests` with `faults` among them trips the breaker.
pub fn trips(requests: u32, faults: u32, s: &BreakerSettings) -> bool {
    requests >= s.min_requests && f64::from(faults) >= s.max_fault_ratio * f64::from(requests)
}

/// A trip: the account's window when it tripped.
#[derive(Debug, Clone, PartialEq)]
pub struct Trip {
    pub requests: u32,
    pub faults: u32,
}

pub struct Breaker {
    settings: BreakerSettings,
    /// Per provider, per account (looked up by `&str`: no allocation per request).
    tallies: Mutex<HashMap<ProviderName, HashMap<String, Tally>>>,
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Breaker {
            settings,
            tallies: Mutex::default(),
        }
    }

    /// Counts one request's result; a fault that tips the window over trips it (once:
    /// the window starts over).
    pub fn record(
        &self,
        provider: ProviderName,
        account: &str,
        fault: bool,
        now: u64,
    ) -> Option<Trip> {
        if !self.settings.enabled {
            return None;
        }
        let mut tallies = self.tallies.lock().expect("breaker lock");
        let accounts = tallies.entry(provider).or_default();
        if !accounts.contains_key(account) {
            let window = (self.settings.window_ms / 1000) as usize;
            accounts.insert(account.to_owned(), Tally::new(window));
        }
        let tally = accounts.get_mut(account).expect("inserted above");
        tally.add(now, fault);
        if !fault {
            return None;
        }
        let (requests, faults) = tally.sum(now);
        trips(requests, faults, &self.settings).then(|| {
            tally.clear();
            Trip { requests, faults }
        })
    }

    /// The hold a trip sets.
    pub fn hold(&self, target: HoldTarget, trip: &Trip) -> Hold {
        Hold {
            target,
            reason: format!(
                "{} of the last {} requests in {} s failed (no answer, 5xx, unreadable); \
                 lifted when a probe gets an answer",
                trip.faults,
                trip.requests,
                self.settings.window_ms / 1000
            ),
            by: BY.into(),
            since: chrono::Utc::now(),
            automatic: true,
        }
    }
}

/// Whole seconds since the epoch, the breaker's clock.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl Handler {
    /// Counts a provider request's result for the breaker of its account, and holds the
    /// account if it trips. The hold is written beside the command, not in its way:
    /// during a Redis stall the write waits out the client's timeout, which the command
    /// that tripped the breaker need not.
    pub(super) fn count_for_breaker<T>(
        &self,
        provider: ProviderName,
        account: &str,
        result: &Result<T, ProviderError>,
    ) {
        let fault = result.as_ref().is_err_and(ProviderError::is_fault);
        let Some(trip) = self.breaker.record(provider, account, fault, now_secs()) else {
            return;
        };
        let target = HoldTarget {
            provider,
            account: Some(account.to_owned()),
        };
        let hold = self.breaker.hold(target, &trip);
        let (store, metrics) = (self.store.clone(), self.metrics.clone());
        let write = async move {
            match store.trip_breaker(&hold).await {
                Ok(set) => metrics.breaker_tripped(&hold, set),
                Err(e) => tracing::warn!(error = %e, "the breaker tripped but could not hold"),
            }
        };
        tokio::spawn(tracing::Instrument::in_current_span(write));
    }
}

/// Probes each account the breaker holds, one worker per account and `every`, and
/// lifts the hold once the provider answers.
pub async fn probe_tripped(
    store: &StateStore,
    board: &HoldBoard,
    providers: &Providers,
    metrics: &Metrics,
    every: Duration,
) {
    for target in board.tripped() {
        // A provider not enabled here is probed by a worker that has it.
        let Some(provider) = providers.named(target.provider) else {
            continue;
        };
        if !store.claim_probe(&target, every).await.unwrap_or(false) {
            continue;
        }
        let account = target
            .account
            .as_deref()
            .unwrap_or(crate::contract::DEFAULT_ACCOUNT);
        let answer = provider.probe(account).await;
        let back = answer.as_ref().map_or_else(|e| !e.is_fault(), |_| true);
        metrics.breaker_probed(&target, back);
        if back && let Err(e) = store.close_breaker(&target).await {
            tracing::warn!(error = %e, "the provider is back but the breaker's hold stays");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            enabled: true,
            window_ms: 10_000,
            min_requests: 4,
            max_fault_ratio: 0.5,
            probe_every_ms: 1000,
        }
    }

    #[test]
    fn it_trips_only_with_enough_requests_and_faults() {
        let s = settings();
        assert!(!trips(3, 3, &s), "too few requests");
        assert!(!trips(10, 4, &s), "too few faults");
        assert!(trips(10, 5, &s));
        assert!(trips(4, 4, &s));
    }

    #[test]
    fn faults_in_the_window_trip_it_once_and_answers_never_do() {
        let b = Breaker::new(settings());
        let e = ProviderName::Ecommpay;
        for _ in 0..4 {
            assert_eq!(b.record(e, "default", false, 100), None);
        }
        assert_eq!(b.record(e, "default", true, 101), None);
        assert_eq!(b.record(e, "default", true, 102), None);
        assert_eq!(b.record(e, "default", true, 103), None);
        assert_eq!(
            b.record(e, "default", true, 104),
            Some(Trip {
                requests: 8,
                faults: 4
            })
        );
        // The window starts over: one more fault trips nothing.
        assert_eq!(b.record(e, "default", true, 104), None);
        // Another account, another provider: their own windows.
        assert_eq!(b.record(e, "kz_main", true, 104), None);
        assert_eq!(b.record(ProviderName::Epay, "default", true, 104), None);
    }

    #[test]
    fn faults_older_than_the_window_no_longer_count() {
        let b = Breaker::new(settings());
        let e = ProviderName::Ecommpay;
        for t in 0..3 {
            assert_eq!(b.record(e, "default", true, t), None);
        }
        // 10 s later the first three are out of the window.
        assert_eq!(b.record(e, "default", true, 12), None);
        assert_eq!(b.record(e, "default", true, 12), None);
        assert_eq!(b.record(e, "default", true, 13), None);
        assert!(b.record(e, "default", true, 13).is_some());
    }

    #[test]
    fn a_disabled_breaker_never_trips() {
        let b = Breaker::new(BreakerSettings {
            enabled: false,
            ..settings()
        });
        for t in 0..20 {
            assert_eq!(b.record(ProviderName::Epay, "default", true, t), None);
        }
    }
}
