//! Turning a recorded state into its event: publish with a confirm, then note in the
//! record that it was published, so duplicates and redeliveries do not repeat it; and
//! republishing, from the record, a terminal event that was recorded but never confirmed.

use crate::bus::{PublishError, Publisher};
use crate::contract::{Event, EventStatus, IdempotencyKey, ProviderResult};
use crate::state::{EventState, Meta, Outcome, State, StateStore, StoreError};
use crate::telemetry::Metrics;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a copy waits for another process's publish before looking again later.
const PUBLISHING_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    #[error("publishing the event: {0}")]
    Publish(#[from] PublishError),
    #[error("recording the event: {0}")]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Announcer {
    pub publisher: Publisher,
    pub store: StateStore,
    pub metrics: Arc<Metrics>,
}

/// Everything an event says about one state of one command.
pub struct Announcement<'a> {
    pub key: &'a IdempotencyKey,
    pub status: EventStatus,
    pub meta: &'a Meta,
    pub outcome: &'a Outcome,
    pub payment_id: Option<&'a str>,
    pub traceparent: Option<&'a str>,
}

impl Announcement<'_> {
    pub fn event(&self) -> Event {
        let mut e = Event::new(self.key.clone(), self.status);
        e.method = self.meta.method;
        e.operation = self.meta.operation;
        e.amount = self.meta.amount;
        e.payment_id = self.payment_id.map(str::to_owned);
        e.provider = self.outcome.code.as_ref().map(|code| ProviderResult {
            code: code.clone(),
            message: self.outcome.message.clone().unwrap_or_default(),
        });
        e.reason = self.outcome.reason.clone();
        e.action = self.outcome.action.clone();
        e
    }
}

impl Announcer {
    /// Publishes the event for `state`. For terminal states the caller holds the
    /// right to publish (taken when the state was recorded, or by `claim_publish`).
    pub async fn announce(&self, a: Announcement<'_>, state: State) -> Result<(), AnnounceError> {
        self.announce_event(&a.event(), a.traceparent, state).await
    }

    /// Publishes a ready event (one that says more than an [`Announcement`] can, such
    /// as `deferred_until`) as [`Announcer::announce`] does.
    pub async fn announce_event(
        &self,
        event: &Event,
        traceparent: Option<&str>,
        state: State,
    ) -> Result<(), AnnounceError> {
        let key = &event.idempotency_key;
        let started = Instant::now();
        if let Err(e) = self.publisher.publish_event(event, traceparent).await {
            // Best effort: if this fails too, the claim simply expires.
            let _ = self.store.publish_release(key, state).await;
            return Err(e.into());
        }
        self.metrics.event_published(event.status);
        self.metrics.payment_event(
            event.method.map_or("unknown", |m| m.provider().as_str()),
            event.method.map_or("unknown", |m| m.as_str()),
            event.operation.map_or("unknown", |o| o.as_str()),
            event.status,
        );
        // Only these events are ever published again from the record (by duplicates,
        // the reconciler, a resent redirect), so only they need noting; `accepted` and
        // `deferred` would cost a round trip for nothing.
        if state.is_terminal() || state == State::ActionRequired {
            let age = self.store.publish_done(key, state).await?;
            // A rejected command never became a payment: it was never uncertain.
            if let (Some(age), Some(method), true) = (
                age,
                event.method,
                state.is_terminal() && state != State::Rejected,
            ) {
                self.metrics.time_to_certainty(method, age);
            }
        }
        self.metrics.stage(
            crate::telemetry::label::Stage::Publish,
            started.elapsed().as_secs_f64(),
        );
        Ok(())
    }

    /// Makes sure the terminal event of a finished command is out: true once the broker
    /// confirmed it (now or before). False while another process still publishes it:
    /// the caller must then not ack, answer 200 or forget it, but look again later, so
    /// that the event is not lost if that process dies.
    pub async fn ensure_published(
        &self,
        key: &IdempotencyKey,
        state: State,
        mut event: EventState,
        traceparent: Option<&str>,
    ) -> Result<bool, AnnounceError> {
        let deadline = Instant::now() + PUBLISHING_WAIT;
        loop {
            match event {
                EventState::Published => return Ok(true),
                EventState::Unpublished if self.republish_terminal(key, traceparent).await? => {
                    return Ok(true);
                }
                EventState::Unpublished | EventState::Publishing => {}
            }
            if Instant::now() > deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            event = self.store.event_state(key, state).await?;
        }
    }

    /// Publishes a recorded `action_required` event that never went out (its publisher
    /// failed, or died, before the broker confirmed it): without it the customer's action
    /// data reaches nobody, and the payment waits for an action nobody can take. Found by
    /// the chaos run: a broker restart failed the publish, the redelivered copy found the
    /// state and only waited, and a later Redis loss took the action data with it.
    pub async fn ensure_action_announced(
        &self,
        key: &IdempotencyKey,
        traceparent: Option<&str>,
    ) -> Result<(), AnnounceError> {
        if self.store.event_state(key, State::ActionRequired).await? == EventState::Unpublished {
            self.republish_terminal(key, traceparent).await?;
        }
        Ok(())
    }

    /// Publishes the event of a command's recorded state (terminal, or asking for the
    /// customer's action) from its record; false when another process holds the right
    /// to publish it.
    async fn republish_terminal(
        &self,
        key: &IdempotencyKey,
        traceparent: Option<&str>,
    ) -> Result<bool, AnnounceError> {
        let Some(rec) = self.store.record(key).await? else {
            return Ok(true);
        };
        let status = match rec.state {
            State::ActionRequired => EventStatus::ActionRequired,
            state => match state.terminal_event() {
                Some(status) => status,
                None => return Ok(true),
            },
        };
        if !self.store.claim_publish(key, rec.state).await? {
            return Ok(false);
        }
        self.announce(
            Announcement {
                key,
                status,
                meta: &rec.meta,
                outcome: &rec.outcome.unwrap_or_default(),
                payment_id: rec.payment_id.as_deref(),
                traceparent,
            },
            rec.state,
        )
        .await?;
        Ok(true)
    }
}
