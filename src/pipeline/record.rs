//! Recording a state reached with the lease held, or a final outcome, through
//! [`outcome`](crate::outcome), and announcing it.

use super::Handled;
use super::handle::{Ctx, HandleError, Handler};
use crate::outcome::{Leased, Report, Settled};
use crate::state::{Lease, Outcome, State};
use crate::telemetry::label::RetryReason;
use std::time::SystemTime;

impl Handler {
    /// Records `state` and announces it. The provider is the authority on final
    /// outcomes: they settle without the lease, so a callback that raced this worker is
    /// never overwritten; `failed` is payfleet's own verdict (retries spent) and, like
    /// every open state, takes the lease.
    pub(super) async fn record(
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
        if !state.is_terminal() || state == State::Failed {
            let basic = self
                .providers
                .timing(ctx.provider, ctx.cmd.method, ctx.cmd.operation)
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
                let msg = ctx.msg;
                let park = self
                    .policy()
                    .park(msg.info.attempt, RetryReason::EventPending, None);
                let provider = ctx.cmd.provider().as_str();
                let carried = ctx.provider.carry(ctx.cmd, ctx.payment_id);
                self.park(
                    msg,
                    msg.routing_key,
                    key,
                    provider,
                    park,
                    carried.as_deref(),
                )
                .await?
            }
            Settled::Duplicate | Settled::Conflicting | Settled::Late => Handled::Duplicate,
            Settled::Missing => Handled::RecordLost,
        })
    }
}
