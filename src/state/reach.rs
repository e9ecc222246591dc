//! Waiting for Redis: every process does it the same way, at start and after an outage.

use super::StateStore;
use crate::telemetry::label::Service;
use crate::telemetry::{Metrics, Readiness};
use backon::Retryable;

impl StateStore {
    /// Returns once Redis answers a PING, trying again by `backoff` (forever) meanwhile:
    /// each failed attempt is logged and counted once, and `ready` says Redis is away
    /// until it answers.
    pub async fn reach(
        &self,
        backoff: backon::ExponentialBuilder,
        metrics: &Metrics,
        ready: &Readiness,
    ) {
        let reached = (|| self.ping())
            .retry(backoff)
            .notify(|e, _| {
                ready.set(Service::Redis, false);
                metrics.reconnect(Service::Redis, &e.to_string());
            })
            .await;
        debug_assert!(reached.is_ok(), "retried forever");
        ready.set(Service::Redis, true);
    }
}
