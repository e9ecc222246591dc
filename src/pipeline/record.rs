//! Recording a state reached with the lease held, and announcing it.

use super::Handled;
use super::announce::Announcement;
use super::handle::{Ctx, HandleError, Handler};
use crate::contract::EventStatus;
use crate::state::{Lease, Outcome, State, Transition};
use std::time::{Instant, SystemTime};

impl Handler {
    /// Records a state reached with the lease held, and announces it.
    pub(super) async fn record(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        state: State,
        outcome: &Outcome,
    ) -> Result<Handled, HandleError> {
        let key = &ctx.cmd.key;
        let status = match state {
            State::Submitted => EventStatus::Accepted,
            State::ActionRequired => EventStatus::ActionRequired,
            other => other
                .terminal_event()
                .expect("record takes event-bearing states"),
        };
        // The provider is the authority on final outcomes: they settle without the
        // lease, so a callback that raced this worker is never overwritten.
        let applied = if state.is_terminal() && state != State::Failed {
            match self
                .store
                .settle(key, state, outcome, ctx.meta, ctx.payment_id)
                .await?
            {
                crate::state::Settle::Applied { .. } => true,
                crate::state::Settle::Duplicate {
                    state: recorded,
                    event,
                    ..
                } => {
                    let provider = ctx.cmd.provider().as_str();
                    return self.finished(ctx.msg, key, recorded, event, provider).await;
                }
            }
        } else {
            // The open payment is indexed for the reconciler in the same round trip
            // (two scripts cannot share it: the index is a hash slot of its own), so a
            // crash cannot leave it recorded and unwatched. If the write is refused, the
            // entry only costs the reconciler one look at a settled record.
            let basic = self
                .providers
                .timing(ctx.cmd.method, ctx.cmd.operation)
                .basic;
            let (moved, tracked) = tokio::join!(
                self.store.transition(key, lease, state, Some(outcome)),
                self.store.track(key, SystemTime::now() + basic, false),
            );
            tracked?;
            match moved? {
                Transition::Ok => true,
                Transition::Missing => return Ok(Handled::RecordLost),
                Transition::Terminal(_) | Transition::Fenced => {
                    return Ok(Handled::Fenced);
                }
            }
        };
        if !applied {
            return Ok(Handled::Duplicate);
        }
        self.metrics.transition(state.as_str());
        if state.is_terminal() {
            self.store.untrack(key).await?;
        }
        let started = Instant::now();
        self.announcer
            .announce(
                Announcement {
                    key,
                    status,
                    meta: ctx.meta,
                    outcome,
                    payment_id: Some(ctx.payment_id),
                    traceparent: ctx.msg.info.traceparent.as_deref(),
                },
                state,
            )
            .await?;
        self.metrics
            .stage("publish", started.elapsed().as_secs_f64());
        Ok(Handled::Event(status))
    }
}
