//! The state machine's changes: claiming, moving with the lease, settling, rejecting.

use super::events::EventState;
use super::record::TraceContext;
use super::store::{Result, StoreError, int, state, text};
use super::{Meta, Outcome, State, StateStore};
use crate::contract::{Fingerprint, IdempotencyKey};

/// Proof of ownership of a command being submitted: writes with a stale one are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub fence: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimMode {
    /// Never sent, or known not to be in flight: submit.
    Fresh,
    /// May have reached the provider: ask it for the status before sending anything.
    Recover,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Claimed {
        lease: Lease,
        mode: ClaimMode,
        attempt: u32,
        /// Time since the previous owner took it (and at most since it last sent it).
        since_last_claim: std::time::Duration,
        /// The id the record keeps, which its payment was sent as: the one to use,
        /// whatever was allocated for this delivery.
        payment_id: String,
    },
    /// The key is already used by a command with a different body.
    Conflict,
    /// Already finished; `event` says where its terminal event is.
    Terminal { state: State, event: EventState },
    /// Submitted and waiting for the provider's result.
    Awaiting(State),
    /// Another worker holds a live lease on it.
    Busy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Ok,
    /// The provider's result got there first.
    Terminal(State),
    /// The lease was lost to another worker.
    Fenced,
    Missing,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Settle {
    Applied {
        previous: Option<State>,
        meta: Meta,
        context: TraceContext,
    },
    Duplicate {
        state: State,
        meta: Meta,
        event: EventState,
        context: TraceContext,
    },
    /// Open in a state it was not to be settled from: nothing recorded.
    Moved { state: State, context: TraceContext },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectVerdict {
    Applied,
    Conflict,
    Duplicate { state: State, event: EventState },
}

impl StateStore {
    /// Claims a command to submit it. `traceparent`: the command's W3C trace, kept in
    /// the record (the first one only) for whoever settles the payment.
    pub async fn claim(
        &self,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        lease_ms: u64,
        payment_id: &str,
        meta: &Meta,
        traceparent: Option<&str>,
    ) -> Result<Claim> {
        let owner = uuid::Uuid::new_v4().simple().to_string();
        let meta = serde_json::to_string(meta).expect("meta serialises");
        let r = self
            .run(
                &self.scripts.claim,
                key,
                &[
                    fingerprint.as_str(),
                    &owner,
                    &lease_ms.to_string(),
                    payment_id,
                    &meta,
                    traceparent.unwrap_or_default(),
                ],
            )
            .await?;
        let verdict = text(&r, 0)?;
        Ok(match verdict.as_str() {
            "claimed" => Claim::Claimed {
                lease: Lease {
                    owner,
                    fence: int(&r, 1)?,
                },
                mode: if text(&r, 2)? == "fresh" {
                    ClaimMode::Fresh
                } else {
                    ClaimMode::Recover
                },
                attempt: int(&r, 3)? as u32,
                since_last_claim: std::time::Duration::from_millis(int(&r, 4)?.max(0) as u64),
                payment_id: text(&r, 5)?,
            },
            "conflict" => Claim::Conflict,
            "terminal" => Claim::Terminal {
                state: state(&r, 2)?,
                event: EventState::from_flag(int(&r, 3)?),
            },
            "awaiting" => Claim::Awaiting(state(&r, 2)?),
            "busy" => Claim::Busy,
            other => return Err(StoreError::Protocol(format!("claim: {other}"))),
        })
    }

    pub async fn transition(
        &self,
        key: &IdempotencyKey,
        lease: &Lease,
        to: State,
        outcome: Option<&Outcome>,
    ) -> Result<Transition> {
        self.transition_with(key, lease, to, outcome, "").await
    }

    /// Hands a claimed command back to wait for the provider's working hours: a
    /// transition to `received` whose claim does not count as an attempt.
    pub async fn defer(
        &self,
        key: &IdempotencyKey,
        lease: &Lease,
        outcome: &Outcome,
    ) -> Result<Transition> {
        self.transition_with(key, lease, State::Received, Some(outcome), "uncounted")
            .await
    }

    async fn transition_with(
        &self,
        key: &IdempotencyKey,
        lease: &Lease,
        to: State,
        outcome: Option<&Outcome>,
        counting: &str,
    ) -> Result<Transition> {
        let outcome = outcome
            .map(|o| serde_json::to_string(o).expect("outcome serialises"))
            .unwrap_or_default();
        let r = self
            .run(
                &self.scripts.transition,
                key,
                &[
                    &lease.owner,
                    &lease.fence.to_string(),
                    to.as_str(),
                    &outcome,
                    counting,
                ],
            )
            .await?;
        Ok(match text(&r, 0)?.as_str() {
            "ok" => Transition::Ok,
            "terminal" => Transition::Terminal(state(&r, 1)?),
            "fenced" => Transition::Fenced,
            "missing" => Transition::Missing,
            other => return Err(StoreError::Protocol(format!("transition: {other}"))),
        })
    }

    /// Extends the lease; false when it was lost (or its record was).
    pub async fn renew(&self, key: &IdempotencyKey, lease: &Lease, lease_ms: u64) -> Result<bool> {
        Ok(self.renewal(key, lease, lease_ms, false).await? == Transition::Ok)
    }

    /// Extends the lease of a recovery about to send the command again, and notes the
    /// time of that request (the next recovery waits from it): `Fenced` when another
    /// worker took it, `Missing` when Redis lost the record (then nobody owns it).
    pub async fn renew_to_resend(
        &self,
        key: &IdempotencyKey,
        lease: &Lease,
        lease_ms: u64,
    ) -> Result<Transition> {
        self.renewal(key, lease, lease_ms, true).await
    }

    async fn renewal(
        &self,
        key: &IdempotencyKey,
        lease: &Lease,
        lease_ms: u64,
        resending: bool,
    ) -> Result<Transition> {
        let mut inv = self.scripts.renew.key(self.record_key(key));
        inv.arg(&lease.owner)
            .arg(lease.fence)
            .arg(lease_ms)
            .arg(if resending { "1" } else { "0" });
        let mut conn = self.conn.clone();
        let owned: i64 = inv.invoke_async(&mut conn).await?;
        Ok(match owned {
            1 => Transition::Ok,
            0 => Transition::Fenced,
            -1 => Transition::Missing,
            other => return Err(StoreError::Protocol(format!("renew: {other}"))),
        })
    }

    /// Applies an outcome the provider reported to its record; `None` when there is no
    /// record, and none is created.
    pub async fn settle(
        &self,
        key: &IdempotencyKey,
        to: State,
        outcome: &Outcome,
    ) -> Result<Option<Settle>> {
        self.settle_from(key, to, outcome, &[]).await
    }

    /// [`StateStore::settle`] only from one of the open states `from` (empty: any);
    /// from another, nothing is recorded ([`Settle::Moved`]).
    pub async fn settle_from(
        &self,
        key: &IdempotencyKey,
        to: State,
        outcome: &Outcome,
        from: &[State],
    ) -> Result<Option<Settle>> {
        let outcome = serde_json::to_string(outcome).expect("outcome serialises");
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let r = self
            .run(
                &self.scripts.settle,
                key,
                &[to.as_str(), &outcome, &from.join(" ")],
            )
            .await?;
        let meta: Meta = serde_json::from_str(&text(&r, 2)?).unwrap_or_default();
        let context = TraceContext::read(&text(&r, 4)?, &text(&r, 5)?);
        Ok(Some(match text(&r, 0)?.as_str() {
            "applied" => Settle::Applied {
                previous: State::parse(&text(&r, 1)?),
                meta,
                context,
            },
            "duplicate" => Settle::Duplicate {
                state: state(&r, 1)?,
                meta,
                event: EventState::from_flag(int(&r, 3)?),
                context,
            },
            "moved" => Settle::Moved {
                state: state(&r, 1)?,
                context,
            },
            "missing" => return Ok(None),
            other => return Err(StoreError::Protocol(format!("settle: {other}"))),
        }))
    }

    pub async fn reject(
        &self,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        meta: &Meta,
        outcome: &Outcome,
    ) -> Result<RejectVerdict> {
        let meta = serde_json::to_string(meta).expect("meta serialises");
        let outcome = serde_json::to_string(outcome).expect("outcome serialises");
        let r = self
            .run(
                &self.scripts.reject,
                key,
                &[fingerprint.as_str(), &meta, &outcome],
            )
            .await?;
        Ok(match text(&r, 0)?.as_str() {
            "applied" => RejectVerdict::Applied,
            "conflict" => RejectVerdict::Conflict,
            "duplicate" => RejectVerdict::Duplicate {
                state: state(&r, 1)?,
                event: EventState::from_flag(int(&r, 2)?),
            },
            other => return Err(StoreError::Protocol(format!("reject: {other}"))),
        })
    }
}
