//! Rate limits in the pipeline: a request waits briefly for its slot; a command whose
//! slot is further away, or that the provider throttled, is parked in a delay queue
//! (lease given back, consumer slot freed). Neither counts as a failed attempt.

use super::handle::{Ctx, HandleError, Handled, Handler, Incoming, PARKED_GRACE};
use crate::contract::Command;
use crate::contract::command::Invalid;
use crate::ratelimit::{DEFERRALS_HEADER, Decision, RateKey};
use crate::state::{Lease, State};
use lapin::types::AMQPValue;
use std::time::{Duration, SystemTime};

/// How often a command was deferred by a limit or throttled by the provider.
pub(super) fn deferrals(msg: &Incoming<'_>) -> u32 {
    match msg.info.headers.inner().get(DEFERRALS_HEADER) {
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(*n).unwrap_or(0),
        Some(AMQPValue::LongUInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => u32::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

/// How long to wait after a 429 that advised no time.
const THROTTLED_DEFAULT: Duration = Duration::from_secs(1);

impl Handler {
    /// A command naming an account its provider is not configured with is rejected.
    pub(super) fn unknown_account(&self, cmd: &Command) -> Option<Invalid> {
        let account = cmd.account.as_deref();
        if self.providers.get(cmd).has_account(account) {
            return None;
        }
        Some(Invalid {
            key: cmd.key.clone(),
            fingerprint: cmd.fingerprint.clone(),
            method: Some(cmd.method),
            operation: Some(cmd.operation),
            amount: Some(cmd.amount),
            reason: format!(
                "account {:?} is not configured for {}",
                account.unwrap_or_default(),
                cmd.provider().as_str()
            ),
        })
    }

    /// Waits for a rate-limit slot for one request of `class`. `Some`: the command was
    /// parked instead (given back as `next`), and is finished for now.
    pub(super) async fn throttle(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        class: &'static str,
        next: State,
    ) -> Result<Option<Handled>, HandleError> {
        let key = RateKey::new(ctx.cmd.provider(), ctx.cmd.account.as_deref(), class);
        match self.limiter.acquire(&key).await {
            Decision::Go { .. } => Ok(None),
            Decision::Defer(delay) => self
                .defer(ctx, lease, next, "rate_limited", delay)
                .await
                .map(Some),
        }
    }

    /// The provider answered 429: try again after the time it advised (a little later
    /// at random, so the throttled ones do not return together).
    pub(super) async fn throttled(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        next: State,
        retry_after: Option<Duration>,
    ) -> Result<Handled, HandleError> {
        let advised = retry_after.unwrap_or(THROTTLED_DEFAULT);
        let delay = advised + advised.mul_f64(rand::random::<f64>() / 5.0);
        tracing::warn!(?retry_after, "throttled by the provider");
        self.defer(ctx, lease, next, "provider_throttled", delay)
            .await
    }

    /// Gives the lease back and parks the command for `delay` (in the shortest delay
    /// queue that holds it), one more deferral on its count.
    async fn defer(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        next: State,
        reason: &str,
        delay: Duration,
    ) -> Result<Handled, HandleError> {
        if let Some(handled) = self.release(ctx, lease, next, reason).await? {
            return Ok(handled);
        }
        let delays = &self.settings.retry_delays_ms;
        let ms = (delay.as_millis() as u64).max(1);
        let queue = delays
            .iter()
            .copied()
            .find(|d| *d >= ms)
            .unwrap_or(delays[delays.len() - 1]);
        // The reconciler looks at it should the delay queue never give it back.
        let watch = Duration::from_millis(2 * queue) + PARKED_GRACE;
        self.store
            .track(&ctx.cmd.key, SystemTime::now() + watch, true)
            .await?;
        let mut headers = ctx.msg.info.headers.clone();
        headers.insert(
            DEFERRALS_HEADER.into(),
            AMQPValue::LongLongInt(i64::from(deferrals(ctx.msg)) + 1),
        );
        self.publisher
            .delay_exact(
                queue,
                ms,
                &ctx.cmd.routing_key(),
                ctx.msg.body,
                headers,
                ctx.msg.info.attempt,
            )
            .await?;
        tracing::debug!(reason, delay_ms = ms, queue_ms = queue, "command deferred");
        Ok(Handled::Retrying)
    }
}
