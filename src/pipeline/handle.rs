//! What a worker does with one delivery. Every path ends in an ack only after the
//! command's state is recorded and its event (if any) confirmed by the broker.

use crate::bus::{DeliveryInfo, PublishError, Publisher};
use crate::config::WorkerSettings;
use crate::contract::command::{self, Decoded, Invalid};
use crate::contract::{Command, EventStatus, FingerprintKey};
use crate::outcome::{
    AnnounceError, Announcement, Announcer, Leased, PARKED_GRACE, Report, Settled,
};
use crate::providers::{Provider, ProviderError, Providers, Status, Submission};
use crate::state::{
    Claim, ClaimMode, Lease, Meta, Outcome, RejectVerdict, State, StateStore, StoreError,
    Transition,
};
use crate::telemetry::Metrics;
use crate::telemetry::label::{
    DeadLetterReason, Finished, NoEvent, ProviderRequest, RequestResult, RetryReason, Stage,
};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Why a delivery could not be finished now (the infrastructure failed, not the command).
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Announce(#[from] AnnounceError),
}

/// How one delivery ended, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Event(EventStatus),
    Retrying,
    Duplicate,
    DeadLettered,
    /// Another worker owns it now.
    Fenced,
    /// The outcome is unknown and retries are spent: the reconciler settles it.
    Unresolved,
    /// A copy of a payment that waits for the provider's result.
    Awaiting,
    /// Its record vanished mid-flight (Redis lost its data).
    RecordLost,
    /// Held in the delay queues until the provider's working hours.
    Deferred,
}

impl Handled {
    /// Whether the payment is still open, so its command should come back to check.
    fn open(self) -> bool {
        matches!(
            self,
            Handled::Event(
                EventStatus::Accepted | EventStatus::ActionRequired | EventStatus::Deferred
            ) | Handled::Awaiting
                | Handled::Unresolved
                | Handled::RecordLost
        )
    }
}

impl Handled {
    pub fn label(self) -> Finished {
        let no_event = Finished::NoEvent;
        match self {
            Handled::Event(s) => Finished::Event(s),
            Handled::Retrying => no_event(NoEvent::Retrying),
            Handled::Duplicate => no_event(NoEvent::Duplicate),
            Handled::DeadLettered => no_event(NoEvent::DeadLettered),
            Handled::Fenced => no_event(NoEvent::Fenced),
            Handled::Unresolved => no_event(NoEvent::Unresolved),
            Handled::Awaiting => no_event(NoEvent::Awaiting),
            Handled::RecordLost => no_event(NoEvent::RecordLost),
            Handled::Deferred => Finished::Event(EventStatus::Deferred),
        }
    }
}

/// Bounded metric labels of a delivery.
#[derive(Debug, Clone, Copy)]
pub struct Labels {
    pub method: &'static str,
    pub operation: &'static str,
}

pub struct Handler {
    pub store: StateStore,
    pub publisher: Publisher,
    pub announcer: Announcer,
    pub providers: Providers,
    pub metrics: Arc<Metrics>,
    pub settings: WorkerSettings,
    pub limiter: Arc<crate::ratelimit::RateLimiter>,
    /// `amqp.delivery_limit`: the quorum queue dead-letters a command handed back more
    /// often than this, whole; the handler does it first, with card data redacted.
    pub delivery_limit: u32,
    /// Keys the card data in command fingerprints.
    pub fingerprint_key: FingerprintKey,
}

/// One delivery, as the handler sees it.
pub struct Incoming<'a> {
    pub body: &'a [u8],
    pub routing_key: &'a str,
    pub info: &'a DeliveryInfo,
}

impl Handler {
    /// Handles one delivery; also returns its method and operation for the metrics.
    pub async fn handle(&self, msg: &Incoming<'_>) -> (Labels, Result<Handled, HandleError>) {
        if msg.info.delivery_count + 1 >= self.delivery_limit {
            // A crash loop: the next hand-back would make the broker dead-letter it as
            // it is, card data included. Its record, if any, stays open for the
            // reconciler, as it would after the broker's dead-lettering.
            let reason = format!(
                "delivered {} times without finishing (amqp.delivery_limit {})",
                msg.info.delivery_count + 1,
                self.delivery_limit
            );
            let labels = Labels {
                method: "unknown",
                operation: "unknown",
            };
            return (
                labels,
                self.dead_letter(msg, DeadLetterReason::DeliveryLimit, &reason)
                    .await,
            );
        }
        let started = Instant::now();
        let decoded = command::decode(msg.body, &self.fingerprint_key);
        self.metrics
            .stage(Stage::Validate, started.elapsed().as_secs_f64());
        let span = tracing::Span::current();
        match &decoded {
            Decoded::Valid(c) => span.record("key", c.key.as_str()),
            Decoded::Invalid(i) => span.record("key", i.key.as_str()),
            Decoded::Undecodable(_) => &span,
        };
        let labels = match &decoded {
            Decoded::Valid(c) => Labels {
                method: c.method.as_str(),
                operation: c.operation.as_str(),
            },
            Decoded::Invalid(i) => Labels {
                method: i.method.map_or("unknown", |m| m.as_str()),
                operation: i.operation.map_or("unknown", |o| o.as_str()),
            },
            Decoded::Undecodable(_) => Labels {
                method: "unknown",
                operation: "unknown",
            },
        };
        let result = match decoded {
            Decoded::Undecodable(reason) => {
                self.dead_letter(
                    msg,
                    DeadLetterReason::Undecodable,
                    &format!("cannot decode the command: {reason}"),
                )
                .await
            }
            Decoded::Invalid(invalid) => self.reject(msg, invalid).await,
            Decoded::Valid(cmd) => match self.unknown_account(&cmd) {
                Some(invalid) => self.reject(msg, invalid).await,
                None => self.process_and_watch(msg, &cmd).await,
            },
        };
        (labels, result)
    }

    async fn dead_letter(
        &self,
        msg: &Incoming<'_>,
        class: DeadLetterReason,
        reason: &str,
    ) -> Result<Handled, HandleError> {
        // Card data never goes to the dead-letter queue.
        let body = crate::contract::card::redact(msg.body);
        self.publisher
            .dead_letter(msg.routing_key, &body, msg.info.headers.clone(), reason)
            .await?;
        self.metrics.dead_letter(class, reason);
        Ok(Handled::DeadLettered)
    }

    async fn reject(&self, msg: &Incoming<'_>, invalid: Invalid) -> Result<Handled, HandleError> {
        let meta = Meta {
            method: invalid.method,
            operation: invalid.operation,
            amount: invalid.amount,
        };
        let outcome = Outcome {
            reason: Some(invalid.reason.clone()),
            ..Default::default()
        };
        tracing::warn!(key = %invalid.key, reason = %invalid.reason, "command rejected");
        match self
            .store
            .reject(&invalid.key, &invalid.fingerprint, &meta, &outcome)
            .await?
        {
            RejectVerdict::Applied => {
                self.metrics.transition(State::Rejected);
                self.announcer
                    .announce(
                        Announcement {
                            key: &invalid.key,
                            status: EventStatus::Rejected,
                            meta: &meta,
                            outcome: &outcome,
                            payment_id: None,
                            traceparent: msg.info.traceparent.as_deref(),
                        },
                        State::Rejected,
                    )
                    .await?;
                Ok(Handled::Event(EventStatus::Rejected))
            }
            RejectVerdict::Duplicate { state, event } => {
                self.metrics.duplicate("none", state);
                self.finished(msg, &invalid.key, state, event, "none").await
            }
            RejectVerdict::Conflict => self.conflict(msg, &invalid.key).await,
        }
    }

    /// A copy of a finished command: done once its terminal event is out. While another
    /// process is still publishing it, the copy is parked, not acked, so the event cannot
    /// be lost if that process dies.
    async fn finished(
        &self,
        msg: &Incoming<'_>,
        key: &crate::contract::IdempotencyKey,
        state: State,
        event: crate::state::EventState,
        provider: &str,
    ) -> Result<Handled, HandleError> {
        let traceparent = msg.info.traceparent.as_deref();
        if self
            .announcer
            .ensure_published(key, state, event, traceparent)
            .await?
        {
            return Ok(Handled::Duplicate);
        }
        self.park_for(
            msg,
            msg.routing_key,
            provider,
            msg.info.attempt,
            RetryReason::EventPending,
            None,
        )
        .await
    }

    async fn conflict(
        &self,
        msg: &Incoming<'_>,
        key: &crate::contract::IdempotencyKey,
    ) -> Result<Handled, HandleError> {
        self.dead_letter(
            msg,
            DeadLetterReason::IdempotencyConflict,
            &format!("idempotency_key {key} is already used by a command with a different body"),
        )
        .await
    }

    /// Processes a valid command; while its payment stays open, a copy of the command
    /// waits in a delay queue and comes back to check on it. That reminder lives in the
    /// broker, so even if Redis loses everything, the payment is looked at again (the
    /// provider's refusal of a known id and the status query then settle it).
    async fn process_and_watch(
        &self,
        msg: &Incoming<'_>,
        cmd: &Command,
    ) -> Result<Handled, HandleError> {
        let handled = self.process(msg, cmd).await?;
        // A copy of an open payment continues the reminders if it is one, if it was
        // redelivered (its first handling may have died before starting them), or if it
        // is a retry (the handling that parked it started none: the retry was its
        // reminder); other duplicates do not, so reminders do not multiply.
        let continues_chain = handled != Handled::Awaiting
            || msg.info.check_back
            || msg.info.redelivered
            || msg.info.attempt > 1;
        if self.settings.check_back && handled.open() && continues_chain {
            let basic = self.providers.timing(cmd.method, cmd.operation).basic;
            let delays = &self.settings.retry_delays_ms;
            let basic_ms = basic.as_millis() as u64;
            let delay = delays
                .iter()
                .copied()
                .find(|d| *d >= basic_ms)
                .unwrap_or(delays[delays.len() - 1]);
            let mut headers = msg.info.headers.clone();
            headers.insert(
                crate::bus::headers::CHECK_BACK.into(),
                lapin::types::AMQPValue::Boolean(true),
            );
            self.publisher
                .delay(
                    delay,
                    &cmd.routing_key(),
                    msg.body,
                    headers,
                    msg.info.attempt,
                )
                .await?;
        }
        Ok(handled)
    }

    async fn process(&self, msg: &Incoming<'_>, cmd: &Command) -> Result<Handled, HandleError> {
        let provider = self.providers.get(cmd);
        let payment_id = match provider.payment_id(cmd).await {
            Ok(id) => id,
            // Allocating the id failed (Redis): nothing was sent, try again later.
            Err(e) => {
                return self
                    .park(msg, cmd, msg.info.attempt, e.retry_reason())
                    .await;
            }
        };
        tracing::Span::current().record("payment_id", payment_id.as_str());
        let meta = Meta {
            method: Some(cmd.method),
            operation: Some(cmd.operation),
            amount: Some(cmd.amount),
        };
        let started = Instant::now();
        let claim = self
            .store
            .claim(
                &cmd.key,
                &cmd.fingerprint,
                self.settings.lease_ms,
                &payment_id,
                &meta,
                msg.info.traceparent.as_deref(),
            )
            .await?;
        self.metrics
            .stage(Stage::Idempotency, started.elapsed().as_secs_f64());
        let ctx = Ctx {
            msg,
            cmd,
            provider,
            payment_id: &payment_id,
            meta: &meta,
        };
        match claim {
            Claim::Conflict => self.conflict(msg, &cmd.key).await,
            Claim::Terminal { state, event } => {
                self.metrics.duplicate(cmd.provider().as_str(), state);
                self.finished(msg, &cmd.key, state, event, cmd.provider().as_str())
                    .await
            }
            Claim::Awaiting(state) => {
                // A crash between recording and indexing would leave it unwatched.
                let basic = self.providers.timing(cmd.method, cmd.operation).basic;
                self.store
                    .track(&cmd.key, SystemTime::now() + basic, true)
                    .await?;
                self.metrics.duplicate(cmd.provider().as_str(), state);
                Ok(Handled::Awaiting)
            }
            Claim::Busy => {
                // Another worker is submitting it. If that worker dies, its own delivery
                // comes back; this copy waits until the lease has settled either way.
                self.metrics
                    .duplicate(cmd.provider().as_str(), State::Submitting);
                self.park(msg, cmd, msg.info.attempt, RetryReason::Busy)
                    .await
            }
            Claim::Claimed {
                lease,
                mode,
                attempt,
                since_last_claim,
            } => {
                // Returns from a rate-limit deferral were not failed attempts.
                let attempt = attempt.saturating_sub(super::throttle::deferrals(msg));
                tracing::debug!(attempt, ?mode, "claimed");
                if mode == ClaimMode::Recover {
                    let not_before = self
                        .providers
                        .timing(cmd.method, cmd.operation)
                        .status_not_before;
                    if since_last_claim < not_before {
                        // Too early for the provider to know it: wait, still unknown.
                        return self
                            .wait_unknown(&ctx, &lease, attempt, not_before - since_last_claim)
                            .await;
                    }
                    if let Some(done) = self.ask_status(&ctx, &lease, attempt).await? {
                        return Ok(done);
                    }
                }
                self.submit(&ctx, &lease, attempt).await
            }
        }
    }

    /// Asks the provider what it knows of the payment. `None`: it has never seen it,
    /// so it is safe to submit.
    async fn ask_status(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        attempt: u32,
    ) -> Result<Option<Handled>, HandleError> {
        if let Some(deferred) = self
            .throttle(ctx, lease, crate::ratelimit::STATUS, State::Unknown)
            .await?
        {
            return Ok(Some(deferred));
        }
        let started = Instant::now();
        let status = self
            .renewing(ctx, lease, ctx.provider.status_of(ctx.cmd, ctx.payment_id))
            .await;
        self.provider_metric(
            ctx,
            ProviderRequest::Status,
            &status.as_ref().map(|_| ()),
            started,
        );
        let handled = match status {
            Ok(Status::NotFound) => return Ok(None),
            Ok(Status::Pending) => {
                self.record(ctx, lease, State::Submitted, &Outcome::default())
                    .await?
            }
            Ok(Status::ActionRequired(outcome)) => {
                self.record(ctx, lease, State::ActionRequired, &outcome)
                    .await?
            }
            Ok(Status::Final { state, outcome }) => {
                self.record(ctx, lease, state, &outcome).await?
            }
            Err(ProviderError::Throttled { retry_after }) => {
                self.throttled(ctx, lease, State::Unknown, retry_after)
                    .await?
            }
            Err(e) => self.failed_attempt(ctx, lease, attempt, e).await?,
        };
        Ok(Some(handled))
    }

    async fn submit(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        attempt: u32,
    ) -> Result<Handled, HandleError> {
        if let Some(deadline) = ctx.cmd.deadline
            && chrono::Utc::now() > deadline
        {
            let outcome = Outcome {
                reason: Some(format!(
                    "expired: its deadline {deadline} passed before it could be sent"
                )),
                ..Default::default()
            };
            return self.record(ctx, lease, State::Failed, &outcome).await;
        }
        if let Err(reason) = ctx.provider.check(ctx.cmd).await {
            let outcome = Outcome {
                reason: Some(reason),
                ..Default::default()
            };
            return self.record(ctx, lease, State::Rejected, &outcome).await;
        }
        if let Some(wait) = ctx.provider.hold(ctx.cmd) {
            return self.hold_until_open(ctx, lease, wait).await;
        }
        if let Some(deferred) = self
            .throttle(ctx, lease, crate::ratelimit::PAYMENT, State::Received)
            .await?
        {
            return Ok(deferred);
        }
        let started = Instant::now();
        let submitted = self
            .renewing(ctx, lease, ctx.provider.submit(ctx.cmd))
            .await;
        self.provider_metric(
            ctx,
            ProviderRequest::Submit,
            &submitted.as_ref().map(|_| ()),
            started,
        );
        match submitted {
            Ok(Submission::Accepted) => {
                self.record(ctx, lease, State::Submitted, &Outcome::default())
                    .await
            }
            Ok(Submission::ActionRequired(outcome)) => {
                self.record(ctx, lease, State::ActionRequired, &outcome)
                    .await
            }
            Ok(Submission::Final { state, outcome }) => {
                self.record(ctx, lease, state, &outcome).await
            }
            Err(ProviderError::AlreadyExists) => {
                tracing::info!("the provider already knows this payment: asking for its status");
                match self.ask_status(ctx, lease, attempt).await? {
                    Some(done) => Ok(done),
                    None => {
                        let e = ProviderError::Unknown(
                            "the provider knows the payment id but not its status yet".into(),
                        );
                        self.failed_attempt(ctx, lease, attempt, e).await
                    }
                }
            }
            Err(ProviderError::Refused { code, message }) => {
                let outcome = Outcome {
                    code: Some(code),
                    message: Some(message),
                    ..Default::default()
                };
                self.record(ctx, lease, State::Declined, &outcome).await
            }
            Err(ProviderError::Throttled { retry_after }) => {
                self.throttled(ctx, lease, State::Received, retry_after)
                    .await
            }
            Err(e) => self.failed_attempt(ctx, lease, attempt, e).await,
        }
    }

    /// A retryable failure: park the command for a later attempt, or give up.
    async fn failed_attempt(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        attempt: u32,
        error: ProviderError,
    ) -> Result<Handled, HandleError> {
        if !error.is_retryable() {
            let outcome = Outcome {
                reason: Some(error.to_string()),
                ..Default::default()
            };
            return self.record(ctx, lease, State::Failed, &outcome).await;
        }
        let reached = error.may_have_reached_provider();
        if attempt >= self.settings.max_attempts {
            if !reached {
                let outcome = Outcome {
                    reason: Some(format!("gave up after {attempt} attempts: {error}")),
                    ..Default::default()
                };
                return self.record(ctx, lease, State::Failed, &outcome).await;
            }
            // It may have been paid: giving up is not ours to say. The reconciler keeps
            // asking the provider and settles it as the provider does.
            tracing::warn!(attempt, error = %error, "retries spent with the outcome unknown; left to the reconciler");
            let outcome = Outcome {
                reason: Some(error.to_string()),
                ..Default::default()
            };
            return match self
                .store
                .transition(&ctx.cmd.key, lease, State::Unknown, Some(&outcome))
                .await?
            {
                Transition::Ok => {
                    self.metrics.transition(State::Unknown);
                    self.store
                        .track(&ctx.cmd.key, SystemTime::now(), false)
                        .await?;
                    Ok(Handled::Unresolved)
                }
                Transition::Missing => Ok(Handled::RecordLost),
                Transition::Terminal(_) | Transition::Fenced => Ok(Handled::Fenced),
            };
        }
        tracing::warn!(attempt, error = %error, "provider call failed; will retry");
        // Not knowing whether it arrived, the next attempt must ask before sending.
        let next = if reached {
            State::Unknown
        } else {
            State::Received
        };
        self.release_and_park(
            ctx,
            lease,
            next,
            &error.to_string(),
            attempt + 1,
            error.retry_reason(),
            None,
        )
        .await
    }

    /// Holds a command the provider cannot take now (outside its working hours). The
    /// claim is handed back without counting as an attempt, one `deferred` event says
    /// when it will go, and the command cycles through the delay queues until then, so
    /// it survives worker restarts and nothing waits in memory.
    async fn hold_until_open(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        wait: std::time::Duration,
    ) -> Result<Handled, HandleError> {
        let until =
            chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        let outcome = Outcome {
            reason: Some(format!(
                "deferred until {}: outside the provider's working hours",
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
            ..Default::default()
        };
        match self.store.defer(&ctx.cmd.key, lease, &outcome).await? {
            Transition::Ok => self.metrics.transition(State::Received),
            Transition::Missing => return Ok(Handled::RecordLost),
            Transition::Terminal(_) | Transition::Fenced => return Ok(Handled::Fenced),
        }
        let traceparent = ctx.msg.info.traceparent.as_deref();
        let mut headers = ctx.msg.info.headers.clone();
        if !headers.inner().contains_key(crate::bus::headers::DEFERRED) {
            let mut event = Announcement {
                key: &ctx.cmd.key,
                status: EventStatus::Deferred,
                meta: ctx.meta,
                outcome: &outcome,
                payment_id: Some(ctx.payment_id),
                traceparent,
            }
            .event();
            event.deferred_until = Some(until);
            self.announcer
                .announce_event(&event, traceparent, State::Received)
                .await?;
            headers.insert(
                crate::bus::headers::DEFERRED.into(),
                lapin::types::AMQPValue::Boolean(true),
            );
        }
        // The longest delay that does not overshoot the opening, so the command is
        // sent at most the shortest delay late.
        let delays = &self.settings.retry_delays_ms;
        let wait_ms = wait.as_millis() as u64;
        let shortest = delays.iter().copied().min().unwrap_or(1000);
        let delay = delays
            .iter()
            .copied()
            .filter(|d| *d <= wait_ms)
            .max()
            .unwrap_or(shortest);
        // The reconciler leaves it alone until well after the window opens.
        let watch = wait + std::time::Duration::from_millis(2 * delay) + PARKED_GRACE;
        self.store
            .track(&ctx.cmd.key, SystemTime::now() + watch, false)
            .await?;
        self.publisher
            .delay(
                delay,
                &ctx.cmd.routing_key(),
                ctx.msg.body,
                headers,
                ctx.msg.info.attempt,
            )
            .await?;
        // Not a failure, so not a retry: the delivery is counted as `deferred`.
        tracing::info!(%until, delay_ms = delay, "held for the provider's working hours");
        Ok(Handled::Deferred)
    }

    /// Too early to ask the provider about an unknown outcome: park it until it may.
    async fn wait_unknown(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        attempt: u32,
        wait: std::time::Duration,
    ) -> Result<Handled, HandleError> {
        let reason = "waiting until the provider can answer a status request";
        self.release_and_park(
            ctx,
            lease,
            State::Unknown,
            reason,
            attempt,
            RetryReason::StatusNotYet,
            Some(wait),
        )
        .await
    }

    /// Gives the lease back (as `next`) and parks the command for a later attempt.
    #[allow(clippy::too_many_arguments)]
    async fn release_and_park(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        next: State,
        reason: &str,
        attempt: u32,
        class: RetryReason,
        at_least: Option<std::time::Duration>,
    ) -> Result<Handled, HandleError> {
        if let Some(handled) = self.release(ctx, lease, next, reason).await? {
            return Ok(handled);
        }
        let (rk, provider) = (ctx.cmd.routing_key(), ctx.cmd.provider().as_str());
        self.park_for(ctx.msg, &rk, provider, attempt, class, at_least)
            .await
    }

    /// Gives the lease back (as `next`). `Some`: the record went elsewhere meanwhile.
    pub(super) async fn release(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        next: State,
        reason: &str,
    ) -> Result<Option<Handled>, HandleError> {
        let outcome = Outcome {
            reason: Some(reason.to_owned()),
            ..Default::default()
        };
        match self
            .store
            .transition(&ctx.cmd.key, lease, next, Some(&outcome))
            .await?
        {
            Transition::Ok => {
                self.metrics.transition(next);
                Ok(None)
            }
            Transition::Missing => Ok(Some(Handled::RecordLost)),
            Transition::Terminal(_) | Transition::Fenced => Ok(Some(Handled::Fenced)),
        }
    }

    /// Runs a provider call while renewing the lease, so that a slow provider does not
    /// hand the command to a second worker mid-call.
    async fn renewing<T>(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        call: impl std::future::Future<Output = T>,
    ) -> T {
        let every = std::time::Duration::from_millis((self.settings.lease_ms / 3).max(1));
        let mut call = std::pin::pin!(call);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                out = &mut call => return out,
                _ = tick.tick() => {
                    match self.store.renew(&ctx.cmd.key, lease, self.settings.lease_ms).await {
                        Ok(true) => {}
                        // Lost or unreachable: the call goes on (it may be processed);
                        // the write after it is fenced if another worker took over.
                        Ok(false) => tracing::warn!("lease lost during a provider call"),
                        Err(e) => tracing::warn!(error = %e, "cannot renew the lease"),
                    }
                }
            }
        }
    }

    /// Puts the command in the delay queue for its attempt number.
    async fn park(
        &self,
        msg: &Incoming<'_>,
        cmd: &Command,
        attempt: u32,
        reason: RetryReason,
    ) -> Result<Handled, HandleError> {
        let (rk, provider) = (cmd.routing_key(), cmd.provider().as_str());
        self.park_for(msg, &rk, provider, attempt, reason, None)
            .await
    }

    /// Parks a message: the delay grows with the attempt (exponential tiers), and is at
    /// least `at_least` when given.
    async fn park_for(
        &self,
        msg: &Incoming<'_>,
        routing_key: &str,
        provider: &str,
        attempt: u32,
        reason: RetryReason,
        at_least: Option<std::time::Duration>,
    ) -> Result<Handled, HandleError> {
        let delays = &self.settings.retry_delays_ms;
        let mut delay = delays[(attempt.saturating_sub(2) as usize).min(delays.len() - 1)];
        if let Some(min) = at_least {
            let min = min.as_millis() as u64;
            let fits = delays.iter().copied().find(|d| *d >= min);
            delay = fits.unwrap_or(delays[delays.len() - 1]).max(delay);
        }
        // The broker may drop a message that expires while it shuts down: should this
        // one never come back, the reconciler looks at the command anyway.
        let key = match command::decode(msg.body, &self.fingerprint_key) {
            Decoded::Valid(c) => Some(c.key),
            Decoded::Invalid(i) => Some(i.key),
            Decoded::Undecodable(_) => None,
        };
        if let Some(key) = key {
            let watch = std::time::Duration::from_millis(2 * delay) + PARKED_GRACE;
            self.store
                .track(&key, SystemTime::now() + watch, true)
                .await?;
        }
        self.publisher
            .delay(
                delay,
                routing_key,
                msg.body,
                msg.info.headers.clone(),
                attempt,
            )
            .await?;
        self.metrics.retry(provider, reason, attempt, delay);
        Ok(Handled::Retrying)
    }

    /// Records a state reached with the lease held, and announces it. Final outcomes
    /// the provider reported settle without the lease: the provider is the authority on
    /// them, so a callback that raced this worker is never overwritten.
    async fn record(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        state: State,
        outcome: &Outcome,
    ) -> Result<Handled, HandleError> {
        let key = &ctx.cmd.key;
        let report = Report {
            key,
            state,
            outcome,
            payment_id: ctx.payment_id,
            meta: ctx.meta,
            traceparent: ctx.msg.info.traceparent.as_deref(),
        };
        // `failed` is payfleet's own verdict (retries spent): it takes the lease.
        if !state.is_terminal() || state == State::Failed {
            let basic = self
                .providers
                .timing(ctx.cmd.method, ctx.cmd.operation)
                .basic;
            let check_at = SystemTime::now() + basic;
            let leased =
                crate::outcome::record_leased(&self.announcer, report, lease, check_at).await?;
            return Ok(match leased {
                Leased::Announced(status) => Handled::Event(status),
                Leased::Fenced => Handled::Fenced,
                Leased::Missing => Handled::RecordLost,
            });
        }
        let (settled, _) = crate::outcome::settle(&self.announcer, report).await?;
        Ok(match settled {
            Settled::Applied => {
                self.store.untrack(key).await?;
                Handled::Event(state.terminal_event().expect("settled a final state"))
            }
            // Parked, not acked, as a copy of a finished command is.
            Settled::Publishing => {
                let (msg, provider) = (ctx.msg, ctx.cmd.provider().as_str());
                self.park_for(
                    msg,
                    msg.routing_key,
                    provider,
                    msg.info.attempt,
                    crate::telemetry::label::RetryReason::EventPending,
                    None,
                )
                .await?
            }
            Settled::Duplicate | Settled::Conflicting | Settled::Late => Handled::Duplicate,
        })
    }

    fn provider_metric(
        &self,
        ctx: &Ctx<'_>,
        request: ProviderRequest,
        result: &Result<(), &ProviderError>,
        started: Instant,
    ) {
        let class = match result {
            Ok(()) => RequestResult::Ok,
            Err(e) => e.class(),
        };
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.stage(Stage::Provider, seconds);
        self.metrics.provider_call(
            ctx.cmd.provider().as_str(),
            ctx.cmd.method.as_str(),
            request,
            class,
            seconds,
        );
    }
}

pub(super) struct Ctx<'a> {
    pub(super) msg: &'a Incoming<'a>,
    pub(super) cmd: &'a Command,
    provider: &'a dyn Provider,
    payment_id: &'a str,
    meta: &'a Meta,
}
