//! What a worker does with one delivery: triage, then the command's steps (see
//! [`super::process`]). Every path ends in an ack only after the command's state is
//! recorded and its event (if any) confirmed by the broker.

use super::Handled;
use super::decide::{self, Policy};
use super::step::Step;
use crate::bus::{DeliveryInfo, Ladder, PublishError, Publisher};
use crate::config::WorkerSettings;
use crate::contract::command::{self, Decoded, Invalid};
use crate::contract::{Command, EventStatus, IdempotencyKey};
use crate::outcome::{AnnounceError, Announcement, Announcer, PARKED_GRACE};
use crate::providers::{Provider, Providers, not_enabled};
use crate::state::{EventState, Meta, Outcome, RejectVerdict, State, StateStore, StoreError};
use crate::telemetry::Metrics;
use crate::telemetry::label::{DeadLetterReason, RetryReason, Stage};
use std::sync::Arc;
use std::time::Instant;

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
    /// The delay queues, from `settings.retry_delays_ms`.
    pub ladder: Ladder,
    pub limiter: Arc<crate::ratelimit::RateLimiter>,
    /// `amqp.delivery_limit`: the quorum queue dead-letters a command handed back more
    /// often than this, whole; the handler does it first, with card data redacted.
    pub delivery_limit: u32,
    /// Keys the fingerprint that stands in for card data when commands are compared.
    pub fingerprint_key: crate::contract::FingerprintKey,
    /// The operators' holds, as this worker last read them.
    pub holds: crate::state::HoldBoard,
    pub breaker: Arc<super::breaker::Breaker>,
}

/// One delivery, as the handler sees it.
pub struct Incoming<'a> {
    pub body: &'a [u8],
    pub routing_key: &'a str,
    pub info: &'a DeliveryInfo,
}

/// A valid command being processed.
pub(super) struct Ctx<'a> {
    pub(super) msg: &'a Incoming<'a>,
    pub(super) cmd: &'a Command,
    pub(super) provider: &'a dyn Provider,
    pub(super) payment_id: &'a str,
    pub(super) meta: &'a Meta,
}

impl Handler {
    /// Handles one delivery; also returns its method and operation for the metrics.
    pub async fn handle(&self, msg: &Incoming<'_>) -> (Labels, Result<Handled, HandleError>) {
        if let Some(Step::DeadLetter { class, reason }) =
            decide::over_delivery_limit(msg.info.delivery_count, self.delivery_limit)
        {
            // A crash loop: the next hand-back would make the broker dead-letter it as
            // it is, card data included. Its record, if any, stays open for the
            // reconciler, as it would after the broker's dead-lettering.
            let labels = Labels {
                method: "unknown",
                operation: "unknown",
            };
            return (labels, self.dead_letter(msg, class, &reason).await);
        }
        if let Some(Step::DeadLetter { class, reason }) =
            decide::oversize_headers(msg.info.headers_len, self.publisher.header_room())
        {
            // Before decoding: any answer would carry the headers on.
            let labels = Labels {
                method: "unknown",
                operation: "unknown",
            };
            return (labels, self.dead_letter(msg, class, &reason).await);
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
            Decoded::Valid(cmd) => match self.served(msg, &cmd) {
                Ok(provider) => self.process_and_watch(msg, &cmd, provider).await,
                Err(invalid) => self.reject(msg, invalid).await,
            },
        };
        (labels, result)
    }

    /// What the decisions depend on besides what was learned, as of now.
    pub(super) fn policy(&self) -> Policy<'_> {
        Policy {
            ladder: &self.ladder,
            max_attempts: self.settings.max_attempts,
            now: chrono::Utc::now(),
            grace: PARKED_GRACE,
        }
    }

    /// The provider that serves a valid command, or why it is rejected before anything
    /// is claimed or sent: delivered under another routing key than its body's (see
    /// [`command::misrouted`]), its provider not enabled here, or an account its
    /// provider is not configured with.
    fn served(&self, msg: &Incoming<'_>, cmd: &Command) -> Result<&dyn Provider, Invalid> {
        if let Some(reason) = command::misrouted(msg.routing_key, cmd.method, cmd.operation) {
            return Err(rejection(cmd, reason));
        }
        let Some(provider) = self.providers.get(cmd) else {
            return Err(rejection(cmd, not_enabled(cmd.provider()).to_owned()));
        };
        if !provider.has_account(cmd.account.as_deref()) {
            // Not the name itself: a reason never quotes the command.
            let reason = format!(
                "account is not one configured for {}",
                cmd.provider().as_str()
            );
            return Err(rejection(cmd, reason));
        }
        Ok(provider)
    }

    pub(super) async fn dead_letter(
        &self,
        msg: &Incoming<'_>,
        class: DeadLetterReason,
        reason: &str,
    ) -> Result<Handled, HandleError> {
        // Card data never goes to the dead-letter queue.
        let body = crate::contract::card::redact(msg.body, msg.routing_key);
        self.publisher
            .dead_letter(msg.routing_key, &body, msg.info, class, reason)
            .await?;
        self.metrics.dead_letter(class, reason);
        Ok(Handled::DeadLettered)
    }

    async fn reject(&self, msg: &Incoming<'_>, invalid: Invalid) -> Result<Handled, HandleError> {
        let meta = Meta {
            method: invalid.method,
            operation: invalid.operation,
            amount: invalid.amount,
            account: None,
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
    pub(super) async fn finished(
        &self,
        msg: &Incoming<'_>,
        key: &IdempotencyKey,
        state: State,
        event: EventState,
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
        let park = self
            .policy()
            .park(msg.info.attempt, RetryReason::EventPending, None);
        self.park(msg, msg.routing_key, key, provider, park, None)
            .await
    }

    pub(super) async fn conflict(
        &self,
        msg: &Incoming<'_>,
        key: &IdempotencyKey,
    ) -> Result<Handled, HandleError> {
        self.dead_letter(
            msg,
            DeadLetterReason::IdempotencyConflict,
            &format!("idempotency_key {key} is already used by a command with a different body"),
        )
        .await
    }
}

/// A valid command refused for `reason`.
fn rejection(cmd: &Command, reason: String) -> Invalid {
    Invalid {
        key: cmd.key.clone(),
        fingerprint: cmd.fingerprint.clone(),
        method: Some(cmd.method),
        operation: Some(cmd.operation),
        amount: Some(cmd.amount),
        reason,
    }
}
