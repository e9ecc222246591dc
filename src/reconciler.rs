//! The reconciler: nothing stays open silently. Payments waiting for a provider's
//! result past their method's basic time are status-queried; past the threshold time
//! they are settled as the provider settles them (ECommPay declines them). Outcomes
//! nobody knows (retries spent) are asked about until the provider answers.
//!
//! One reconciler leads at a time (a Redis lock), whether it runs as `payfleet
//! reconciler` or inside the workers.

use crate::bus::{Canary, Flow, PublisherLink};
use crate::contract::IdempotencyKey;
use crate::outcome::{Announcer, RETRY_SILENCE, Report, Settled};
use crate::providers::{ProviderError, Providers, Status, Timing, not_enabled};
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
/// How often an overdue payment is asked about again: five of its provider's basic
/// times, at most [`RECHECK_CAP`]. Scaled with them (`reconciler.time_scale`), so a
/// chaos run that makes payments overdue in seconds also asks again within the run (a
/// fixed 300 s outlasted it: one transfer, confirmed and paid, was left waiting).
fn overdue_recheck(timing: &Timing) -> Duration {
    timing.basic.saturating_mul(5).min(RECHECK_CAP)
}
/// Sweeps checked at once.
const CONCURRENCY: usize = 32;

/// Why a payment past its threshold stays open where the provider settles nothing then.
pub const OVERDUE: &str = "past the provider's threshold time it still reports the payment \
in progress, and its document promises no outcome: waiting for its final status or an \
operator (a 3-D Secure transfer whose first answer was lost cannot reach its customer: \
check-status carries no 3-D Secure data)";

/// Why a payment past its threshold stays open where the provider does not find it but
/// its document does not make that final (epay's 102 "try again later").
pub const OVERDUE_NOT_FOUND: &str = "past the provider's threshold time it still answers \
\"not found\", which its document does not make final: the money may have moved; waiting \
for its status or an operator";

/// Why a payment past its threshold stays open when the provider refuses to say.
pub const OVERDUE_REFUSED: &str = "past the provider's threshold time it still refuses \
the status request, which says nothing of the payment: waiting for its status or an \
operator";

/// How long a stalled delay queue holds back the judgement of parked commands. Past it
/// (its page went unanswered) they are judged as before, so none waits unjudged for
/// good: a command never sent ends `failed` as its provider says, and one that may have
/// reached it is asked about.
pub const STALL_HOLD: Duration = Duration::from_secs(30 * 60);

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
    /// When Redis last failed this reconciler, or a delay queue was last seen stalled: a
    /// command's silence counts from then at most, since the workers were as likely cut
    /// off as it was and held their commands, and a stalled queue keeps its commands.
    pub last_outage: std::sync::Mutex<Option<std::time::Instant>>,
    /// Watches the delay queues while this reconciler leads.
    pub canary: tokio::sync::Mutex<Canary>,
    /// Since when a delay queue has been stalled without a break (`None`: all flow).
    pub stalled_since: std::sync::Mutex<Option<std::time::Instant>>,
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
                        self.outage_seen();
                    }
                    self.watch_delay_queues().await;
                }
                Ok(false) => {
                    self.canary.lock().await.forget();
                    *self.stalled_since.lock().expect("stall lock") = None;
                    self.metrics.delay_queues_unwatched();
                    // Only the leader reports the open payments (dashboards take the max).
                    self.metrics.payments_open(0);
                    self.metrics.payments_awaiting(&Default::default());
                    self.ready.set(Service::Redis, true);
                    pauses = self.backoff.build();
                }
                Err(e) => {
                    self.outage_seen();
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
        self.canary.lock().await.close().await;
        self.link.close().await;
    }

    /// Looks at the delay queues' canaries. While one is stalled, parked commands are
    /// not judged: what it keeps is late, not lost, and comes back once it flows.
    async fn watch_delay_queues(&self) {
        let now = SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let now_ms = now.unwrap_or_default().as_millis() as u64;
        let mut canary = self.canary.lock().await;
        match canary.look(now_ms).await {
            Ok(flows) => {
                let names = self.link.names();
                for &(ms, flow) in &flows {
                    let stalled = flow == Flow::Stalled;
                    self.metrics.delay_queue_flow(&names.delay(ms), ms, stalled);
                }
                let stalled = flows.iter().any(|&(_, f)| f == Flow::Stalled);
                let stalled_for = {
                    let mut since = self.stalled_since.lock().expect("stall lock");
                    *since = stalled.then(|| since.unwrap_or_else(std::time::Instant::now));
                    since.map(|t| t.elapsed())
                };
                if hold_for_stall(stalled_for) {
                    self.outage_seen();
                } else if stalled_for.is_some_and(|d| d < STALL_HOLD + self.interval) {
                    // Once, as the hold ends: the next looks are past it.
                    tracing::warn!(
                        minutes = STALL_HOLD.as_secs() / 60,
                        "a delay queue is still stalled: its parked commands are judged again"
                    );
                }
            }
            // The broker is away: the publisher's reconnects already say so.
            Err(e) => tracing::debug!(error = %e, "delay queue canaries not looked at"),
        }
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
        if state == State::ActionRequired {
            announcer.ensure_action_announced(key, traceparent).await?;
        }
        let (Some(method), Some(operation)) = (rec.meta.method, rec.meta.operation) else {
            self.store.untrack(key).await?;
            return Ok(Action::Dropped);
        };
        let Some(provider) = self.providers.of(method) else {
            // Every process of a fleet should enable the same providers; until one that
            // has this provider leads, its payment waits, and says so.
            tracing::warn!(key = %key, reason = not_enabled(method.provider()), "payment not checked");
            self.recheck(key, RECHECK_CAP).await?;
            return Ok(Action::StillOpen);
        };
        let timing = self.providers.timing(provider, method, operation);
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
        let since_outage = self
            .last_outage
            .lock()
            .expect("outage lock")
            .map(|t| t.elapsed());
        // The provider's clock starts at its receipt: counted from the last request,
        // not from the command's arrival (holds and retries come before it).
        let (age, silence) = (
            since(rec.trace.sent_at.or(rec.created)),
            silence(since(rec.updated), since_outage),
        );
        if matches!(state, State::Received | State::Unknown) && silence < RETRY_SILENCE {
            // Its retry is parked in a delay queue: give it time to come back.
            self.recheck(key, RETRY_SILENCE - silence).await?;
            return Ok(Action::StillOpen);
        }
        let payment_id = rec.payment_id.as_deref().unwrap_or_default();
        let account = rec.meta.account.as_deref();
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
        let (status, http) = crate::providers::exchanges::collect(
            provider.status_in(account, key, payment_id, method, operation),
        )
        .await;
        self.metrics.provider_call(
            method.provider().as_str(),
            method.as_str(),
            ProviderRequest::Status,
            status
                .as_ref()
                .map_or_else(|e| e.class(), |_| RequestResult::Ok),
            &http,
            started.elapsed().as_secs_f64(),
        );
        match &status {
            // Refused (our token, terminal, signature): the payment stays open, and an
            // operator must see why it cannot be settled.
            Err(e) if !e.is_retryable() => {
                tracing::warn!(key = %key, error = %e, "status request refused; still unknown")
            }
            Err(e) => tracing::info!(key = %key, error = %e, "status not known yet"),
            Ok(_) => {}
        }
        let (to, outcome, action) = match judge(status, state, age, &timing) {
            Verdict::Settle(to, outcome, action) => (to, outcome, action),
            Verdict::Overdue(why) => {
                tracing::warn!(key = %key, state = state.as_str(), reason = why, "payment overdue");
                // On the record too (appended to any earlier note), where operators
                // (and the chaos verdict) look for payments that wait for them.
                if let Some(note) = overdue_note(rec.note.as_deref(), why) {
                    self.store.note(key, &note).await?;
                }
                self.recheck(key, overdue_recheck(&timing)).await?;
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

    fn outage_seen(&self) {
        *self.last_outage.lock().expect("outage lock") = Some(std::time::Instant::now());
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
/// `state`, `age` after it was last sent.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Record this state and publish its event.
    Settle(State, Outcome, Action),
    /// Past a threshold at which the provider settles nothing: left open, said why.
    Overdue(&'static str),
    /// Ask again later.
    Wait,
}

fn judge(
    status: Result<Status, ProviderError>,
    state: State,
    age: Duration,
    timing: &Timing,
) -> Verdict {
    // The provider counts from its own receipt, after the request: a tenth more gives
    // it every chance to have said itself how the payment went.
    let past_threshold = age > timing.threshold + timing.threshold / 10;
    match status {
        Ok(Status::Final { state, outcome }) => Verdict::Settle(state, outcome, Action::Settled),
        // Never sent, or its retry never came back, and the provider's document makes
        // its "not found" final: the provider has not seen it.
        Ok(Status::NotFound)
            if timing.not_found_final
                && (matches!(state, State::Unknown | State::Received) || past_threshold) =>
        {
            let why = reason("the provider never received it");
            Verdict::Settle(State::Failed, why, Action::NeverSent)
        }
        // A "not found" its document does not make final proves nothing.
        Ok(Status::NotFound) if past_threshold && !timing.not_found_final => {
            Verdict::Overdue(OVERDUE_NOT_FOUND)
        }
        // The answer or callback that carried the customer's action was lost, and the
        // status carries it (Gate's `redirect_data`): the customer can still be sent.
        Ok(Status::ActionRequired(outcome))
            if state != State::ActionRequired && outcome.action.is_some() && !past_threshold =>
        {
            Verdict::Settle(State::ActionRequired, outcome, Action::ActionRecovered)
        }
        Ok(Status::Pending | Status::ActionRequired(_))
            if past_threshold && timing.declines_at_threshold =>
        {
            let why =
                reason("no result within the provider's threshold time: the provider declines it");
            Verdict::Settle(State::Declined, why, Action::Expired)
        }
        // The provider promises no outcome at its threshold (epay): nothing proves the
        // money did not move, so the payment stays open for an operator.
        Ok(Status::Pending | Status::ActionRequired(_)) if past_threshold => {
            Verdict::Overdue(OVERDUE)
        }
        // A refused status request says nothing of the payment: never settled by it.
        Err(e) if past_threshold && !e.is_retryable() => Verdict::Overdue(OVERDUE_REFUSED),
        _ => Verdict::Wait,
    }
}

/// How long a command has been silent, as far as this reconciler can tell: no longer
/// than since its own last Redis outage. Found by the chaos run: right after a 150 s
/// outage it failed eleven payouts held for working hours ("never received") whose
/// parked copies were only waiting, like every command, for the workers to reach Redis.
pub fn silence(since_update: Duration, since_outage: Option<Duration>) -> Duration {
    since_outage.map_or(since_update, |o| since_update.min(o))
}

/// Whether parked commands wait for a delay queue stalled for `stalled_for` (`None`:
/// every delay queue flows).
pub fn hold_for_stall(stalled_for: Option<Duration>) -> bool {
    stalled_for.is_some_and(|d| d < STALL_HOLD)
}

/// The part to append to the record's note once it is known to be overdue for `why`;
/// `None` when the note already says so.
pub fn overdue_note(note: Option<&str>, why: &str) -> Option<String> {
    match note {
        Some(n) if n.contains(why) => None,
        _ => Some(format!("overdue: {why}")),
    }
}

fn reason(text: &str) -> Outcome {
    Outcome {
        reason: Some(text.to_owned()),
        ..Default::default()
    }
}

#[cfg(test)]
#[path = "reconciler_tests.rs"]
mod tests;
