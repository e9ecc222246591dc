//! The vocabulary of the pipeline's decisions ([`super::decide`]): what was learned
//! ([`Seen`]) and what to do next ([`Step`]).

use super::Handled;
use crate::bus::{Expiry, Rung};
use crate::providers::{ProviderError, Status, Submission};
use crate::ratelimit::Decision;
use crate::state::{Claim, EventState, Outcome, RefundOwner, State};
use crate::telemetry::label::{DeadLetterReason, ProviderRequest, RetryReason};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// A provider request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// What does the provider know of the payment?
    Status(Asked),
    /// Send the payment.
    Submit,
}

/// Why the provider is asked for a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// The last attempt may have reached it: if it has never seen the payment, send it,
    /// once the last request is old enough for its "not found" to prove that (still
    /// `unproven_for` away; see `Timing::resend_after`).
    Recovering { unproven_for: Duration },
    /// It answered "already exists" to the submission: it must know more.
    AlreadyExists,
    /// It refused a resubmission after an attempt that may have reached it: the refusal
    /// may be of the payment it has, so only its status settles it.
    Refused,
    /// It refused a submission no earlier attempt is on record for, at a provider whose
    /// refusals its client does not check: Redis may have forgotten an attempt that
    /// reached it, so a payment it has settles it, and only a not-found confirms the
    /// refusal.
    RefusedFresh,
}

/// Whether an attempt before this delivery's submission may have reached the provider
/// (the claim's word), and so whether a refusal can be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resent {
    /// None may have: a refusal is of this attempt.
    No,
    /// One may have, and the provider's status has just answered "not found", which is
    /// `proven` where its document makes a not-found final.
    AfterNotFound { proven: bool },
    /// None on record, at a provider whose client does not check its refusals against
    /// its status (epay): after Redis lost its data, a record is fresh although an
    /// attempt reached the provider (found by the chaos run: a re-posted 3-D Secure
    /// confirmation refused as "no check pending" was published `declined` for a
    /// transfer the first post had paid).
    Unchecked,
}

impl Request {
    /// The rate-limit class it counts against.
    pub fn class(self) -> &'static str {
        match self {
            Request::Status(_) => crate::ratelimit::STATUS,
            Request::Submit => crate::ratelimit::PAYMENT,
        }
    }

    /// The state a command deferred before this request is handed back as: before a
    /// status query it stays unknown, before a submission it was never sent.
    pub fn hand_back(self) -> State {
        match self {
            Request::Status(_) => State::Unknown,
            Request::Submit => State::Received,
        }
    }

    /// Metric label.
    pub fn label(self) -> ProviderRequest {
        match self {
            Request::Status(_) => ProviderRequest::Status,
            Request::Submit => ProviderRequest::Submit,
        }
    }
}

/// Why a command waits in a delay queue without it counting as a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Outside the provider's working hours, until then: announced once as `deferred`.
    WorkingHours { until: DateTime<Utc> },
    /// Its rate-limit slot is further away; `ticket` keeps its place in the queue.
    RateLimited { ticket: Option<u64> },
    /// The provider answered 429.
    Throttled,
    /// An operator's hold on its provider or account.
    Held,
}

/// When the reconciler looks at a parked command should its delay queue never give it
/// back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub after: Duration,
    /// Whether it moves an earlier look later (else an existing look is kept).
    pub replace: bool,
}

/// A wait in a delay queue that is not a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferral {
    pub why: Why,
    /// The state the claim is handed back as.
    pub hand_back: State,
    pub rung: Rung,
    pub expiry: Expiry,
    pub watch: Watch,
}

/// A wait in a delay queue before another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Park {
    /// The attempt it comes back as.
    pub attempt: u32,
    /// Bounded metric label of the reason.
    pub class: RetryReason,
    pub rung: Rung,
    pub watch: Watch,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Send it to the dead-letter queue, card data redacted.
    DeadLetter {
        class: DeadLetterReason,
        reason: String,
    },
    /// The key is used by a command with a different body.
    Conflict,
    /// A copy of a finished command: see that its event is out, else park it.
    EnsurePublished { state: State, event: EventState },
    /// A copy of a payment that waits for the provider's result (the callback or the
    /// reconciler settles it): keep it watched.
    Await(State),
    /// Park it; there is no claim to give back.
    Park(Park),
    /// Check that it can go now: its deadline, the provider's check, working hours.
    Prepare { attempt: u32 },
    /// Wait for a rate-limit slot for the request.
    Acquire { request: Request, attempt: u32 },
    /// Make the request.
    Call { request: Request, attempt: u32 },
    /// Record the state (the provider's word or our own final one) and announce it.
    Record { state: State, outcome: Outcome },
    /// Give the claim back as `hand_back`, then park it for another attempt.
    Retry {
        hand_back: State,
        reason: String,
        park: Park,
    },
    /// The outcome is unknown and this delivery can learn no more (retries spent, the
    /// status request refused): the reconciler settles it.
    Unresolved { outcome: Outcome },
    /// Give the claim back uncounted and wait.
    Defer(Deferral),
}

/// What was just learned.
#[derive(Debug)]
pub enum Seen<'a> {
    /// The claim; `attempt` is the delivery's, `deferrals` its rate-limit deferrals;
    /// the provider answers status requests only `status_not_before` after a request,
    /// and its "not found" proves the request never arrived only `resend_after` after it.
    Claim {
        claim: &'a Claim,
        attempt: u32,
        deferrals: u32,
        status_not_before: Duration,
        resend_after: Duration,
    },
    Gate {
        gate: Gate,
        attempt: u32,
    },
    Slot {
        decision: Decision,
        request: Request,
        attempt: u32,
    },
    Status {
        asked: Asked,
        result: Result<Status, ProviderError>,
        attempt: u32,
    },
    Submission {
        result: Result<Submission, ProviderError>,
        attempt: u32,
        resent: Resent,
    },
}

/// What must hold before a command is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    pub deadline: Option<DateTime<Utc>>,
    /// The provider's own check of the command.
    pub check: Result<(), String>,
    /// How long until the provider's working hours, if outside them.
    pub hold: Option<Duration>,
    /// Whether an operator's hold (`payfleet hold`) stops new requests to its account.
    pub operator_hold: bool,
    /// Who refunds the purchase, for a refund ([`RefundOwner::Ours`] for the others).
    pub refund: RefundOwner,
}

impl Why {
    /// How a delivery deferred for this reason ends, for the metrics.
    pub fn handled(self) -> Handled {
        match self {
            // Not a failure, so not a retry.
            Why::WorkingHours { .. } | Why::Held => Handled::Deferred,
            Why::RateLimited { .. } | Why::Throttled => Handled::Retrying,
        }
    }
}
