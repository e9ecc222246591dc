//! The reconciler: nothing stays open silently. Payments waiting for a provider's
//! result past their method's basic time are status-queried; past the threshold time
//! they are settled as the provider settles them (ECommPay declines them). Outcomes
//! nobody knows (retries spent) are asked about until the provider answers.
//!
//! One reconciler leads at a time (a Redis lock), whether it runs as `payfleet
//! reconciler` or inside the workers.

use crate::bus::PublisherLink;
use crate::contract::IdempotencyKey;
use crate::outcome::{Announcer, RETRY_SILENCE, Report, Settled};
use crate::providers::{Providers, Status};
use crate::state::{Outcome, State, StateStore};
use crate::telemetry::label::{
    ProviderRequest, ReconcilerAction as Action, RequestResult, Service,
};
use crate::telemetry::{Metrics, Readiness};
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// How often an unsettled payment is asked about again, at most.
const RECHECK_CAP: Duration = Duration::from_secs(300);
/// Sweeps checked at once.
const CONCURRENCY: usize = 32;

/// Open payments counted by method each sweep (the earliest due first): beyond it, the
/// per-method gauge undercounts and `payfleet_payments_open` stays exact.
const AWAITING_COUNTED: usize = 10_000;

pub struct Reconciler {
    pub store: StateStore,
    pub providers: Providers,
    pub link: PublisherLink,
    pub metrics: Arc<Metrics>,
    pub ready: Readiness,
    pub interval: Duration,
    pub batch: usize,
    pub owner: String,
}

impl Reconciler {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = tick.tick() => {}
            }
            match self
                .store
                .lead("reconciler", &self.owner, self.interval * 5)
                .await
            {
                Ok(true) => {
                    self.ready.set(true);
                    if let Err(e) = self.sweep().await {
                        tracing::warn!(error = %e, "reconciler sweep failed");
                    }
                }
                Ok(false) => {
                    // Only the leader reports the open payments (dashboards take the max).
                    self.metrics.payments_open(0);
                    self.metrics.payments_awaiting(&Default::default());
                    self.ready.set(true);
                }
                Err(e) => {
                    self.ready.set(false);
                    self.metrics.reconnect(Service::Redis, &e.to_string());
                }
            }
        }
        self.link.close().await;
    }

    /// Checks every payment whose check is due; returns how many were checked.
    pub async fn sweep(&self) -> anyhow::Result<usize> {
        let due = self.store.due(SystemTime::now(), self.batch).await?;
        let n = due.len();
        if let Ok(open) = self.store.open_count().await {
            self.metrics.payments_open(open);
        }
        if let Ok(by_method) = self.store.open_by_method(AWAITING_COUNTED).await {
            self.metrics.payments_awaiting(&by_method);
        }
        futures::stream::iter(due)
            .for_each_concurrent(CONCURRENCY, |key| async move {
                let action = match self.check(&key).await {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(key = %key, error = %e, "reconciler check failed");
                        Action::Error
                    }
                };
                self.metrics.reconciler_action(action);
            })
            .await;
        Ok(n)
    }

    async fn check(&self, key: &IdempotencyKey) -> anyhow::Result<Action> {
        let Some(rec) = self.store.record(key).await? else {
            self.store.untrack(key).await?;
            return Ok(Action::Dropped);
        };
        let announcer = self.announcer().await?;
        let traceparent = rec.trace.traceparent.as_deref();
        let state = rec.state;
        if state.is_terminal() {
            let event = self.store.event_state(key, state).await?;
            if !announcer
                .ensure_published(key, state, event, traceparent)
                .await?
            {
                self.recheck(key, Duration::from_secs(1)).await?;
                return Ok(Action::StillOpen);
            }
            self.store.untrack(key).await?;
            return Ok(Action::Dropped);
        }
        let (Some(method), Some(operation)) = (rec.meta.method, rec.meta.operation) else {
            self.store.untrack(key).await?;
            return Ok(Action::Dropped);
        };
        let timing = self.providers.timing(method, operation);
        let now = SystemTime::now();
        let since = |t: Option<SystemTime>| {
            t.and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default()
        };
        let lease_left = rec.lease_until.and_then(|t| t.duration_since(now).ok());
        if let Some(left) = lease_left.filter(|_| state == State::Submitting) {
            // A worker is on it right now.
            self.recheck(key, left).await?;
            return Ok(Action::StillOpen);
        }
        let (age, silence) = (since(rec.created), since(rec.updated));
        if matches!(state, State::Received | State::Unknown) && silence < RETRY_SILENCE {
            // Its retry is parked in a delay queue: give it time to come back.
            self.recheck(key, RETRY_SILENCE - silence).await?;
            return Ok(Action::StillOpen);
        }
        let payment_id = rec.payment_id.as_deref().unwrap_or_default();
        let started = std::time::Instant::now();
        let status = self
            .providers
            .of(method)
            .status(payment_id, method, operation)
            .await;
        self.metrics.provider_call(
            method.provider().as_str(),
            method.as_str(),
            ProviderRequest::Status,
            status
                .as_ref()
                .map_or_else(|e| e.class(), |_| RequestResult::Ok),
            started.elapsed().as_secs_f64(),
        );
        let (to, outcome, action) = match status {
            Ok(Status::Final { state, outcome }) => (state, outcome, Action::Settled),
            // Never sent, or its retry never came back: the provider has not seen it.
            Ok(Status::NotFound)
                if matches!(state, State::Unknown | State::Received) || age > timing.threshold =>
            {
                (
                    State::Failed,
                    reason("the provider never received it"),
                    Action::NeverSent,
                )
            }
            Ok(Status::Pending | Status::ActionRequired(_) | Status::NotFound)
                if age > timing.threshold =>
            {
                (
                    State::Declined,
                    reason(
                        "no result within the provider's threshold time: the provider declines it",
                    ),
                    Action::Expired,
                )
            }
            Ok(_) | Err(_) => {
                if let Err(e) = status {
                    tracing::info!(key = %key, error = %e, "status not known yet");
                }
                self.recheck(key, timing.basic.min(RECHECK_CAP)).await?;
                return Ok(Action::StillOpen);
            }
        };
        let report = Report {
            key,
            state: to,
            outcome: &outcome,
            payment_id,
            meta: &rec.meta,
            traceparent: None,
        };
        let (settled, _) = crate::outcome::settle(&announcer, report).await?;
        match settled {
            Settled::Publishing => {
                self.recheck(key, Duration::from_secs(1)).await?;
                return Ok(Action::StillOpen);
            }
            // Redis lost it since it was read, as when there was none to read.
            Settled::Missing => {
                self.store.untrack(key).await?;
                return Ok(Action::Dropped);
            }
            _ => {}
        }
        self.store.untrack(key).await?;
        tracing::info!(key = %key, state = to.as_str(), "reconciled");
        Ok(action)
    }

    async fn recheck(&self, key: &IdempotencyKey, after: Duration) -> anyhow::Result<()> {
        self.store
            .track(key, SystemTime::now() + after, false)
            .await?;
        Ok(())
    }

    async fn announcer(&self) -> anyhow::Result<Announcer> {
        Ok(Announcer {
            publisher: self.link.get().await?,
            store: self.store.clone(),
            metrics: self.metrics.clone(),
        })
    }
}

fn reason(text: &str) -> Outcome {
    Outcome {
        reason: Some(text.to_owned()),
        ..Default::default()
    }
}
