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
use crate::providers::{Providers, Status, Timing};
use crate::ratelimit::{Decision, RateKey, RateLimiter, STATUS};
use crate::state::{Outcome, State, StateStore};
use crate::telemetry::label::{
    ProviderRequest, ReconcilerAction as Action, RequestResult, Service,
};
use crate::telemetry::{Metrics, Readiness};
use backon::BackoffBuilder;
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// How often an unsettled payment is asked about again, at most.
const RECHECK_CAP: Duration = Duration::from_secs(300);
/// Sweeps checked at once.
const CONCURRENCY: usize = 32;

/// Why a payment past its threshold stays open where the provider settles nothing then.
pub const OVERDUE: &str = "past the provider's threshold time it still reports the payment \
in progress, and its document promises no outcome: waiting for its final status or an \
operator (a 3-D Secure transfer whose first answer was lost cannot reach its customer: \
check-status carries no 3-D Secure data)";

/// Open payments counted by method each sweep (the earliest due first): beyond it, the
/// per-method gauge undercounts and `payfleet_payments_open` stays exact.
const AWAITING_COUNTED: usize = 10_000;

pub struct Reconciler {
    pub store: StateStore,
    pub providers: Providers,
    pub link: PublisherLink,
    /// Status queries take their slot from the account's `status` class like the
    /// workers' requests.
    pub limiter: Arc<RateLimiter>,
    pub metrics: Arc<Metrics>,
    pub ready: Readiness,
    pub interval: Duration,
    /// Pauses after Redis or the broker failed it (`[reconnect]`).
    pub backoff: backon::ExponentialBuilder,
    pub batch: usize,
    pub owner: String,
}

impl Reconciler {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        // Ready once the broker is reached too, not at its first publish.
        let stopped = tokio::select! {
            _ = stop.wait_for(|s| *s) => true,
            _ = self.link.connect_patiently(self.backoff) => false,
        };
        if stopped {
            return self.link.close().await;
        }
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pauses = self.backoff.build();
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
                    self.ready.set(Service::Redis, true);
                    pauses = self.backoff.build();
                    if let Err(e) = self.sweep().await {
                        tracing::warn!(error = %e, "reconciler sweep failed");
                    }
                }
                Ok(false) => {
                    // Only the leader reports the open payments (dashboards take the max).
                    self.metrics.payments_open(0);
                    self.metrics.payments_awaiting(&Default::default());
                    self.ready.set(Service::Redis, true);
                    pauses = self.backoff.build();
                }
                Err(e) => {
                    self.ready.set(Service::Redis, false);
                    self.metrics.reconnect(Service::Redis, &e.to_string());
                    // Past the tick: every reconciler of a fleet asks again at its own time.
                    let pause = pauses.next().expect("forever");
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
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
        let account = rec.meta.account.as_deref();
        let provider = self.providers.of(method);
        let rate = RateKey::new(method.provider(), account, STATUS);
        let slot = self
            .limiter
            .acquire(&rate, provider.requests_per_call(), None)
            .await;
        if let Decision::Defer { after, .. } = slot {
            // No slot within the limiter's short wait: the sweep goes on with the
            // others, and this payment is asked about once its slot is near.
            self.recheck(key, after).await?;
            return Ok(Action::RateLimited);
        }
        let started = std::time::Instant::now();
        let status = provider
            .status_in(account, payment_id, method, operation)
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
        if let Err(e) = &status {
            tracing::info!(key = %key, error = %e, "status not known yet");
        }
        let (to, outcome, action) = match judge(status.ok(), state, age, &timing) {
            Verdict::Settle(to, outcome, action) => (to, outcome, action),
            Verdict::Overdue => {
                tracing::warn!(key = %key, state = state.as_str(), reason = OVERDUE, "payment overdue");
                self.recheck(key, RECHECK_CAP).await?;
                return Ok(Action::Overdue);
            }
            Verdict::Wait => {
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
        if to == State::ActionRequired {
            // Still open: the customer's result comes by callback or the next query.
            self.recheck(key, timing.basic.min(RECHECK_CAP)).await?;
        } else {
            self.store.untrack(key).await?;
        }
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

/// What a status answer (`None`: no answer) comes to for a payment recorded in
/// `state`, `age` after its command arrived.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Record this state and publish its event.
    Settle(State, Outcome, Action),
    /// Past a threshold at which the provider settles nothing: left open, said so.
    Overdue,
    /// Ask again later.
    Wait,
}

fn judge(status: Option<Status>, state: State, age: Duration, timing: &Timing) -> Verdict {
    let past_threshold = age > timing.threshold;
    match status {
        Some(Status::Final { state, outcome }) => Verdict::Settle(state, outcome, Action::Settled),
        // Never sent, or its retry never came back: the provider has not seen it.
        Some(Status::NotFound)
            if matches!(state, State::Unknown | State::Received) || past_threshold =>
        {
            let why = reason("the provider never received it");
            Verdict::Settle(State::Failed, why, Action::NeverSent)
        }
        // The answer or callback that carried the customer's action was lost, and the
        // status carries it (Gate's `redirect_data`): the customer can still be sent.
        Some(Status::ActionRequired(outcome))
            if state != State::ActionRequired && outcome.action.is_some() && !past_threshold =>
        {
            Verdict::Settle(State::ActionRequired, outcome, Action::ActionRecovered)
        }
        Some(Status::Pending | Status::ActionRequired(_))
            if past_threshold && timing.declines_at_threshold =>
        {
            let why =
                reason("no result within the provider's threshold time: the provider declines it");
            Verdict::Settle(State::Declined, why, Action::Expired)
        }
        // The provider promises no outcome at its threshold (epay): nothing proves the
        // money did not move, so the payment stays open for an operator.
        Some(Status::Pending | Status::ActionRequired(_)) if past_threshold => Verdict::Overdue,
        _ => Verdict::Wait,
    }
}

fn reason(text: &str) -> Outcome {
    Outcome {
        reason: Some(text.to_owned()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn timing(declines_at_threshold: bool) -> Timing {
        Timing {
            basic: 5 * MIN,
            threshold: 60 * MIN,
            declines_at_threshold,
            status_not_before: Duration::from_secs(10),
        }
    }

    fn action() -> Outcome {
        Outcome {
            action: Some(serde_json::json!({"url": "https://bank.example/pay"})),
            ..Default::default()
        }
    }

    fn verdict(status: Status, state: State, age: Duration, declines: bool) -> Verdict {
        judge(Some(status), state, age, &timing(declines))
    }

    #[test]
    fn a_final_status_settles() {
        let status = Status::Final {
            state: State::Succeeded,
            outcome: Outcome::default(),
        };
        let got = verdict(status, State::Submitted, MIN, false);
        assert!(matches!(
            got,
            Verdict::Settle(State::Succeeded, _, Action::Settled)
        ));
    }

    #[test]
    fn not_found_fails_only_what_was_never_received() {
        for state in [State::Unknown, State::Received] {
            let got = verdict(Status::NotFound, state, MIN, true);
            assert!(matches!(
                got,
                Verdict::Settle(State::Failed, _, Action::NeverSent)
            ));
        }
        assert_eq!(
            verdict(Status::NotFound, State::Submitted, MIN, true),
            Verdict::Wait
        );
        let late = verdict(Status::NotFound, State::Submitted, 61 * MIN, true);
        assert!(matches!(late, Verdict::Settle(State::Failed, _, _)));
    }

    #[test]
    fn lost_action_data_is_recovered_from_the_status() {
        let got = verdict(
            Status::ActionRequired(action()),
            State::Submitted,
            6 * MIN,
            true,
        );
        assert_eq!(
            got,
            Verdict::Settle(State::ActionRequired, action(), Action::ActionRecovered)
        );
        // Recorded already, or without data to send the customer with: nothing new.
        let recorded = verdict(
            Status::ActionRequired(action()),
            State::ActionRequired,
            MIN,
            true,
        );
        assert_eq!(recorded, Verdict::Wait);
        let empty = verdict(
            Status::ActionRequired(Outcome::default()),
            State::Submitted,
            MIN,
            true,
        );
        assert_eq!(empty, Verdict::Wait);
    }

    #[test]
    fn past_the_threshold_only_a_provider_that_declines_is_said_to() {
        for status in [Status::Pending, Status::ActionRequired(action())] {
            let ecommpay = verdict(status.clone(), State::Submitted, 61 * MIN, true);
            assert!(matches!(
                ecommpay,
                Verdict::Settle(State::Declined, _, Action::Expired)
            ));
            let epay = verdict(status, State::Submitted, 61 * MIN, false);
            assert_eq!(epay, Verdict::Overdue);
        }
        assert_eq!(
            verdict(Status::Pending, State::Submitted, MIN, false),
            Verdict::Wait
        );
    }

    #[test]
    fn no_answer_waits() {
        assert_eq!(
            judge(None, State::Unknown, 61 * MIN, &timing(true)),
            Verdict::Wait
        );
    }
}
