//! The I/O shell around [`super::decide`]: claims a valid command, then does what each
//! step asks (check, wait for a rate-limit slot, call the provider) and feeds what it
//! learned back in, until a step ends the delivery.

use super::Handled;
use super::decide;
use super::handle::{Ctx, HandleError, Handler, Incoming};
use super::refund;
use super::step::{Gate, Request, Resent, Seen, Step};
use crate::bus::{Expiry, Marks, Parcel};
use crate::contract::{Command, DEFAULT_ACCOUNT, Operation};
use crate::providers::{Provider, ProviderError};
use crate::ratelimit::{Decision, RateKey};
use crate::state::{Lease, Meta, RefundOwner, State, Transition};
use crate::telemetry::label::{RequestResult, Stage};
use std::time::{Instant, SystemTime};

impl Handler {
    /// Processes a valid command; while its payment stays open, a copy of the command
    /// waits in a delay queue and comes back to check on it (see [`decide::check_back`]).
    /// Every copy carries the payment's id as its provider seals it, which the command
    /// takes back should Redis lose the allocation (see [`crate::bus::headers::PAYMENT_ID`]).
    pub(super) async fn process_and_watch(
        &self,
        msg: &Incoming<'_>,
        cmd: &Command,
        provider: &dyn Provider,
    ) -> Result<Handled, HandleError> {
        let (rk, provider_label) = (cmd.routing_key(), cmd.provider().as_str());
        let mut payment_id = match provider.payment_id(cmd, msg.info.carried.as_deref()).await {
            Ok(id) => id,
            // Allocating the id failed (Redis): nothing was sent, try again later.
            Err(e) => {
                let park = self.policy().park(msg.info.attempt, e.retry_reason(), None);
                return self
                    .park(msg, &rk, &cmd.key, provider_label, park, None)
                    .await;
            }
        };
        tracing::Span::current().record("payment_id", payment_id.as_str());
        let handled = self.process(msg, cmd, provider, &mut payment_id).await?;
        let basic = self
            .providers
            .timing(provider, cmd.method, cmd.operation)
            .basic;
        let enabled = self.settings.check_back;
        if let Some(rung) = decide::check_back(enabled, handled, msg.info, basic, &self.ladder) {
            let carried = provider.carry(cmd, &payment_id);
            let parcel = Parcel {
                routing_key: &cmd.routing_key(),
                body: msg.body,
                from: msg.info,
                rung,
                expiry: Expiry::Early,
                attempt: msg.info.attempt,
                marks: Marks {
                    check_back: true,
                    ..Default::default()
                },
                carried: carried.as_deref(),
            };
            self.publisher.park(parcel).await?;
        }
        Ok(handled)
    }

    async fn process(
        &self,
        msg: &Incoming<'_>,
        cmd: &Command,
        provider: &dyn Provider,
        payment_id: &mut String,
    ) -> Result<Handled, HandleError> {
        let (rk, provider_label) = (cmd.routing_key(), cmd.provider().as_str());
        let meta = Meta {
            method: Some(cmd.method),
            operation: Some(cmd.operation),
            amount: Some(cmd.amount),
            account: Some(cmd.account.as_deref().unwrap_or(DEFAULT_ACCOUNT).to_owned()),
        };
        let started = Instant::now();
        let claim = self
            .store
            .claim(
                &cmd.key,
                &cmd.fingerprint,
                self.settings.lease_ms,
                payment_id.as_str(),
                &meta,
                msg.info.traceparent.as_deref(),
            )
            .await?;
        self.metrics
            .stage(Stage::Idempotency, started.elapsed().as_secs_f64());
        if let crate::state::Claim::Claimed {
            payment_id: kept, ..
        } = &claim
            && kept != payment_id
        {
            // Its payment went out under the record's id (the allocation was lost on
            // its own, in another slot): sending or asking under another would pay twice.
            tracing::warn!(allocated = %payment_id, kept = %kept, "the record keeps another payment id: using it");
            tracing::Span::current().record("payment_id", kept.as_str());
            payment_id.clone_from(kept);
        }
        let payment_id = payment_id.as_str();
        if let Some(state) = decide::duplicate_of(&claim) {
            self.metrics.duplicate(provider_label, state);
        }
        let timing = self.providers.timing(provider, cmd.method, cmd.operation);
        let resent = decide::resent(&claim, timing.not_found_final);
        let seen = Seen::Claim {
            claim: &claim,
            attempt: msg.info.attempt,
            deferrals: msg.info.deferrals,
            status_not_before: timing.status_not_before,
            resend_after: timing.resend_after,
        };
        let step = decide::decide(seen, &self.policy());
        match step {
            Step::Conflict => self.conflict(msg, &cmd.key).await,
            Step::EnsurePublished { state, event } => {
                self.finished(msg, &cmd.key, state, event, provider_label)
                    .await
            }
            Step::Await(state) => {
                // A crash between recording and indexing would leave it unwatched.
                self.store
                    .track(&cmd.key, SystemTime::now() + timing.basic, true)
                    .await?;
                if state == State::ActionRequired {
                    self.announcer
                        .ensure_action_announced(&cmd.key, msg.info.traceparent.as_deref())
                        .await?;
                }
                Ok(Handled::Awaiting)
            }
            Step::Park(park) => {
                let carried = provider.carry(cmd, payment_id);
                self.park(msg, &rk, &cmd.key, provider_label, park, carried.as_deref())
                    .await
            }
            step => {
                let crate::state::Claim::Claimed { lease, .. } = &claim else {
                    unreachable!("only a claim goes on to {step:?}")
                };
                let ctx = Ctx {
                    msg,
                    cmd,
                    provider,
                    payment_id,
                    meta: &meta,
                };
                self.run(&ctx, lease, step, resent).await
            }
        }
    }

    /// Runs the steps of a claimed command until one ends the delivery.
    async fn run(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        mut step: Step,
        resent: Resent,
    ) -> Result<Handled, HandleError> {
        loop {
            let seen = match step {
                Step::Prepare { attempt } => Seen::Gate {
                    gate: self.gate(ctx).await?,
                    attempt,
                },
                Step::Acquire { request, attempt } => Seen::Slot {
                    decision: self.acquire(ctx, request).await,
                    request,
                    attempt,
                },
                Step::Call {
                    request: Request::Status(asked),
                    attempt,
                } => {
                    let call = ctx.provider.status_of(ctx.cmd, ctx.payment_id);
                    Seen::Status {
                        asked,
                        result: self.call(ctx, lease, Request::Status(asked), call).await,
                        attempt,
                    }
                }
                Step::Call {
                    request: Request::Submit,
                    attempt,
                } => {
                    // The next recovery waits from this request, not from the first.
                    if matches!(resent, Resent::AfterNotFound { .. }) {
                        let renewed =
                            self.store
                                .renew_to_resend(&ctx.cmd.key, lease, self.settings.lease_ms);
                        match renewed.await? {
                            Transition::Ok => {}
                            // Redis lost it: the command comes back (check-back), never
                            // dropped as another worker's.
                            Transition::Missing => return Ok(Handled::RecordLost),
                            Transition::Terminal(_) | Transition::Fenced => {
                                return Ok(Handled::Fenced);
                            }
                        }
                    }
                    let call = ctx.provider.submit(ctx.cmd, ctx.payment_id);
                    Seen::Submission {
                        result: self.call(ctx, lease, Request::Submit, call).await,
                        attempt,
                        resent,
                    }
                }
                done => return self.finish(ctx, lease, done).await,
            };
            step = decide::decide(seen, &self.policy());
        }
    }

    /// Ends the delivery of a claimed command as `step` says.
    async fn finish(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        step: Step,
    ) -> Result<Handled, HandleError> {
        match step {
            Step::Record { state, outcome } => self.record(ctx, lease, state, &outcome).await,
            Step::Retry {
                hand_back,
                reason,
                park,
            } => self.retry(ctx, lease, hand_back, &reason, park).await,
            Step::Unresolved { outcome } => self.unresolved(ctx, lease, &outcome).await,
            Step::Defer(deferral) => self.defer(ctx, lease, deferral).await,
            other => unreachable!("a claimed command never ends in {other:?}"),
        }
    }

    /// What must hold before the command is sent.
    async fn gate(&self, ctx: &Ctx<'_>) -> Result<Gate, HandleError> {
        let account = ctx.cmd.account.as_deref().unwrap_or(DEFAULT_ACCOUNT);
        let operator_hold = self.holds.holding(ctx.cmd.provider(), account);
        if let Some(h) = &operator_hold {
            tracing::debug!(target = %h.target, by = h.by, "an operator's hold stops it");
        }
        Ok(Gate {
            deadline: ctx.cmd.deadline,
            check: ctx.provider.check(ctx.cmd).await,
            hold: ctx.provider.hold(ctx.cmd),
            operator_hold: operator_hold.is_some(),
            refund: self.refund_owner(ctx).await?,
        })
    }

    /// Who refunds the purchase a refund names (its payment id): this command, once
    /// nobody else does or the owner ended without refunding it.
    async fn refund_owner(&self, ctx: &Ctx<'_>) -> Result<RefundOwner, HandleError> {
        if ctx.cmd.operation != Operation::Refund {
            return Ok(RefundOwner::Ours);
        }
        let (provider, key) = (ctx.cmd.provider(), &ctx.cmd.key);
        let owner = self
            .store
            .refund_owner(provider, ctx.payment_id, key, None)
            .await?;
        Ok(match owner {
            RefundOwner::Other { key: from, state } if refund::may_take_over(state) => {
                self.store
                    .refund_owner(provider, ctx.payment_id, key, Some(&from))
                    .await?
            }
            owner => owner,
        })
    }

    /// Waits briefly for a rate-limit slot for `request`, or says how long to defer.
    async fn acquire(&self, ctx: &Ctx<'_>, request: Request) -> Decision {
        let key = RateKey::new(
            ctx.cmd.provider(),
            ctx.cmd.account.as_deref(),
            request.class(),
        );
        let requests = ctx.provider.requests_per_call();
        self.limiter
            .acquire(&key, requests, ctx.msg.info.rate_ticket)
            .await
    }

    /// Makes a provider request while renewing the lease, and measures it.
    async fn call<T>(
        &self,
        ctx: &Ctx<'_>,
        lease: &Lease,
        request: Request,
        call: impl std::future::Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let started = Instant::now();
        let (result, http) =
            crate::providers::exchanges::collect(self.renewing(ctx, lease, call)).await;
        let account = ctx.cmd.account.as_deref().unwrap_or(DEFAULT_ACCOUNT);
        self.count_for_breaker(ctx.cmd.provider(), account, &result);
        let class = match &result {
            Ok(_) => RequestResult::Ok,
            Err(e) => e.class(),
        };
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.stage(Stage::Provider, seconds);
        self.metrics.provider_call(
            ctx.cmd.provider().as_str(),
            ctx.cmd.method.as_str(),
            request.label(),
            class,
            &http,
            seconds,
        );
        if request == Request::Submit && matches!(result, Err(ProviderError::AlreadyExists)) {
            tracing::info!("the provider already knows this payment: asking for its status");
        }
        result
    }
}
