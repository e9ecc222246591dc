//! Rate limits in the pipeline: a request waits briefly for its slot; a command whose
//! slot is further away, or that the provider throttled, is parked in a delay queue
//! (lease given back, consumer slot freed). Neither counts as a failed attempt.

use super::handle::{Ctx, HandleError, Handled, Handler, Incoming};
use crate::contract::Command;
use crate::contract::command::Invalid;
use crate::outcome::PARKED_GRACE;
use crate::ratelimit::{DEFERRALS_HEADER, Decision, RateKey};
use crate::state::{Lease, State};
use lapin::types::AMQPValue;
use std::time::{Duration, SystemTime};

/// Header holding the ticket a deferral handed out (µs, Redis time).
const TICKET_HEADER: &str = "x-payfleet-rate-ticket";

fn header_number(msg: &Incoming<'_>, name: &str) -> Option<u64> {
    match msg.info.headers.inner().get(name)? {
        AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(u64::from(*n)),
        AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

/// How often a command was deferred by a limit or throttled by the provider.
pub(super) fn deferrals(msg: &Incoming<'_>) -> u32 {
    header_number(msg, DEFERRALS_HEADER).map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
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
        let ticket = header_number(ctx.msg, TICKET_HEADER);
        let requests = self.providers.get(ctx.cmd).requests_per_call();
        let Decision::Defer { after, ticket } = self.limiter.acquire(&key, requests, ticket).await
        else {
            return Ok(None);
        };
        // The largest delay queue that does not overshoot: back early, the command
        // keeps its ticket and goes round again; back late, its slot would go unused.
        let delays = &self.settings.retry_delays_ms;
        let ms = after.as_millis() as u64;
        let queue = delays
            .iter()
            .copied()
            .filter(|d| *d <= ms)
            .max()
            .unwrap_or(delays[0]);
        // Exactly the queue's delay: tickets spread a backlog's returns already.
        self.defer(ctx, lease, next, "rate_limited", (queue, queue), ticket)
            .await
            .map(Some)
    }

    /// The provider answered 429: try again no earlier than the time it advised, and up
    /// to half of it later at random, so that what it throttled together does not
    /// return together (and get throttled together again).
    pub(super) async fn throttled(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        next: State,
        retry_after: Option<Duration>,
    ) -> Result<Handled, HandleError> {
        let advised = retry_after.unwrap_or(THROTTLED_DEFAULT).as_millis() as u64;
        let spread = advised / 2;
        let delays = &self.settings.retry_delays_ms;
        let queue = delays
            .iter()
            .copied()
            .find(|d| *d >= advised + spread)
            .unwrap_or(delays[delays.len() - 1]);
        let wait = advised + rand::random_range(0..=spread);
        tracing::warn!(?retry_after, wait_ms = wait, "throttled by the provider");
        self.defer(ctx, lease, next, "provider_throttled", (queue, wait), None)
            .await
    }

    /// Gives the lease back and parks the command for `wait` ms in the delay queue of
    /// `queue` ms, one more deferral on its count.
    async fn defer(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        next: State,
        reason: &str,
        (queue, wait): (u64, u64),
        ticket: Option<u64>,
    ) -> Result<Handled, HandleError> {
        if let Some(handled) = self.release(ctx, lease, next, reason).await? {
            return Ok(handled);
        }
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
        // Without a new ticket, an old one stays: Redis ignores it once it is stale.
        if let Some(t) = ticket {
            headers.insert(TICKET_HEADER.into(), AMQPValue::LongLongInt(t as i64));
        }
        self.publisher
            .delay_exact(
                queue,
                wait,
                &ctx.cmd.routing_key(),
                ctx.msg.body,
                headers,
                ctx.msg.info.attempt,
            )
            .await?;
        tracing::debug!(reason, wait_ms = wait, "command deferred");
        Ok(Handled::Retrying)
    }
}
