//! Putting a command in a delay queue: parked for another attempt, or deferred (held
//! for the provider's working hours, or waiting for a rate limit) without it counting
//! as one. Each gives the claim back first, if it holds one, and has the reconciler
//! look at the command should the delay queue never give it back.

use super::Handled;
use super::handle::{Ctx, HandleError, Handler, Incoming};
use super::step::{Deferral, Park, Watch, Why};
use crate::bus::{Expiry, Marks, Parcel};
use crate::contract::{EventStatus, IdempotencyKey};
use crate::outcome::Announcement;
use crate::state::{Lease, Outcome, State, Transition};
use std::time::SystemTime;

impl Handler {
    /// Parks a delivery for a later attempt; it holds no claim. `carried`: the
    /// provider's id of its payment as the provider carries it, when known.
    pub(super) async fn park(
        &self,
        msg: &Incoming<'_>,
        routing_key: &str,
        key: &IdempotencyKey,
        provider: &str,
        park: Park,
        carried: Option<&str>,
    ) -> Result<Handled, HandleError> {
        self.watch(key, park.watch).await?;
        let parcel = Parcel {
            routing_key,
            body: msg.body,
            from: msg.info,
            rung: park.rung,
            expiry: Expiry::Early,
            attempt: park.attempt,
            marks: Marks::default(),
            carried,
        };
        self.publisher.park(parcel).await?;
        self.metrics
            .retry(provider, park.class, park.attempt, park.rung.ms());
        Ok(Handled::Retrying)
    }

    /// Gives the claim back (as `hand_back`) and parks the command for another attempt.
    pub(super) async fn retry(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        hand_back: State,
        reason: &str,
        park: Park,
    ) -> Result<Handled, HandleError> {
        tracing::warn!(
            attempt = park.attempt,
            reason,
            "handed back for a later attempt"
        );
        if let Some(handled) = self.release(ctx, lease, hand_back, reason, true).await? {
            return Ok(handled);
        }
        let (rk, provider) = (ctx.cmd.routing_key(), ctx.cmd.provider().as_str());
        let carried = ctx.provider.carry(ctx.cmd, ctx.payment_id);
        self.park(
            ctx.msg,
            &rk,
            &ctx.cmd.key,
            provider,
            park,
            carried.as_deref(),
        )
        .await
    }

    /// Retries are spent or the status request was refused, and the outcome is unknown:
    /// left, unknown, to the reconciler, which keeps asking the provider and settles it
    /// as the provider does.
    pub(super) async fn unresolved(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        outcome: &Outcome,
    ) -> Result<Handled, HandleError> {
        tracing::warn!(
            reason = outcome.reason.as_deref().unwrap_or_default(),
            "outcome unknown (retries spent, or the status request refused); left to the reconciler"
        );
        match self
            .store
            .transition(&ctx.cmd.key, lease, State::Unknown, Some(outcome))
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
        }
    }

    /// Defers a command: the claim is handed back without counting as an attempt, and
    /// the command cycles through the delay queues until it may go, so it survives
    /// worker restarts and nothing waits in memory. A hold for working hours is
    /// announced once, as a `deferred` event saying when it will go.
    pub(super) async fn defer(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        d: Deferral,
    ) -> Result<Handled, HandleError> {
        let reason = match d.why {
            Why::WorkingHours { until } => format!(
                "deferred until {}: outside the provider's working hours",
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            Why::RateLimited { .. } => "rate_limited".into(),
            Why::Throttled => "provider_throttled".into(),
            Why::Held => "held by an operator (payfleet holds)".into(),
        };
        // A hold uncounts its claim in Redis; a rate-limit deferral on its delivery
        // (the deferrals mark), which it can take as unknown as well.
        let held = matches!(d.why, Why::WorkingHours { .. } | Why::Held);
        if let Some(handled) = self
            .release(ctx, lease, d.hand_back, &reason, !held)
            .await?
        {
            return Ok(handled);
        }
        let mut marks = Marks::default();
        match d.why {
            Why::WorkingHours { until } => {
                if !ctx.msg.info.deferred_announced {
                    self.announce_deferred(ctx, &reason, until).await?;
                }
                marks.deferred_announced = true;
            }
            Why::RateLimited { ticket } => {
                marks.rate_deferral = true;
                marks.rate_ticket = ticket;
            }
            Why::Throttled => marks.rate_deferral = true,
            Why::Held => {}
        }
        self.watch(&ctx.cmd.key, d.watch).await?;
        let carried = ctx.provider.carry(ctx.cmd, ctx.payment_id);
        let parcel = Parcel {
            routing_key: &ctx.cmd.routing_key(),
            body: ctx.msg.body,
            from: ctx.msg.info,
            rung: d.rung,
            expiry: d.expiry,
            attempt: ctx.msg.info.attempt,
            marks,
            carried: carried.as_deref(),
        };
        self.publisher.park(parcel).await?;
        let queue_ms = d.rung.ms();
        match d.why {
            Why::WorkingHours { until } => {
                tracing::info!(%until, queue_ms, "held for the provider's working hours");
            }
            Why::Held => tracing::info!(queue_ms, "held by an operator's hold"),
            why => tracing::debug!(?why, queue_ms, expiry = ?d.expiry, "command deferred"),
        }
        Ok(d.why.handled())
    }

    async fn announce_deferred(
        &self,
        ctx: &Ctx<'_>,
        reason: &str,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), HandleError> {
        let traceparent = ctx.msg.info.traceparent.as_deref();
        let outcome = Outcome {
            reason: Some(reason.to_owned()),
            ..Default::default()
        };
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
        Ok(())
    }

    /// Has the reconciler look at a parked command should its delay queue never give
    /// it back.
    async fn watch(&self, key: &IdempotencyKey, watch: Watch) -> Result<(), HandleError> {
        let due = SystemTime::now() + watch.after;
        Ok(self.store.track(key, due, !watch.replace).await?)
    }

    /// Gives the claim back as `next`, the claim counted as an attempt or not. `Some`:
    /// the record went elsewhere meanwhile.
    async fn release(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        next: State,
        reason: &str,
        counted: bool,
    ) -> Result<Option<Handled>, HandleError> {
        let outcome = Outcome {
            reason: Some(reason.to_owned()),
            ..Default::default()
        };
        let key = &ctx.cmd.key;
        // Only a return to `received` can be uncounted (a hold): one kept unknown must
        // be asked about first, which is what attempts count.
        debug_assert!(counted || next == State::Received);
        let moved = if counted {
            self.store
                .transition(key, lease, next, Some(&outcome))
                .await?
        } else {
            self.store.defer(key, lease, &outcome).await?
        };
        match moved {
            Transition::Ok => {
                self.metrics.transition(next);
                Ok(None)
            }
            Transition::Missing => Ok(Some(Handled::RecordLost)),
            Transition::Terminal(_) | Transition::Fenced => Ok(Some(Handled::Fenced)),
        }
    }
}
