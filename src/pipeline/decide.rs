//! Every decision the pipeline takes about a command, pure: from what was just learned
//! (the claim, the gate before sending, the rate limiter, the provider's answer) to the
//! next [`Step`]. The shell ([`super::handle`]) does the I/O a step asks for and feeds
//! what it learned back in, until a step ends the delivery.

use super::Handled;
use super::step::{Asked, Deferral, Gate, Park, Request, Resent, Seen, Step, Watch, Why};
use crate::bus::{Expiry, Ladder, Rung};
use crate::providers::{ProviderError, Status, Submission};
use crate::ratelimit::Decision;
use crate::state::{Claim, ClaimMode, Outcome, State};
use crate::telemetry::label::{DeadLetterReason, RetryReason};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// What decisions depend on besides what was learned, as of the moment of deciding.
#[derive(Debug, Clone)]
pub struct Policy<'a> {
    pub ladder: &'a Ladder,
    /// `worker.max_attempts`.
    pub max_attempts: u32,
    pub now: DateTime<Utc>,
    /// How long past twice its delay the reconciler waits for a parked command.
    pub grace: Duration,
}

/// How often a command held by an operator comes back to see whether the hold is lifted.
const HELD_RECHECK: Duration = Duration::from_secs(30);

/// How long to wait after a 429 that advised no time.
const THROTTLED_DEFAULT: Duration = Duration::from_secs(1);

/// The next step.
pub fn decide(seen: Seen<'_>, p: &Policy<'_>) -> Step {
    match seen {
        Seen::Claim {
            claim,
            attempt,
            deferrals,
            status_not_before,
            resend_after,
        } => claimed(
            claim,
            (attempt, deferrals),
            (status_not_before, resend_after),
            p,
        ),
        Seen::Gate { gate, attempt } => gated(gate, attempt, p),
        Seen::Slot {
            decision,
            request,
            attempt,
        } => match decision {
            Decision::Go { .. } => Step::Call { request, attempt },
            Decision::Defer { after, ticket } => {
                Step::Defer(p.rate_limited(after, ticket, request))
            }
        },
        Seen::Status {
            asked,
            result,
            attempt,
        } => status(asked, result, attempt, p),
        Seen::Submission {
            result,
            attempt,
            resent,
        } => submission(result, attempt, resent, p),
    }
}

fn claimed(
    claim: &Claim,
    (attempt, deferrals): (u32, u32),
    (not_before, resend_after): (Duration, Duration),
    p: &Policy<'_>,
) -> Step {
    match claim {
        Claim::Conflict => Step::Conflict,
        Claim::Terminal { state, event } => Step::EnsurePublished {
            state: *state,
            event: *event,
        },
        Claim::Awaiting(state) => Step::Await(*state),
        // Another worker is submitting it. If that worker dies, its own delivery comes
        // back; this copy waits until the lease has settled either way.
        Claim::Busy => Step::Park(p.park(attempt, RetryReason::Busy, None)),
        Claim::Claimed {
            mode,
            attempt: claims,
            since_last_claim,
            ..
        } => {
            // Returns from a rate-limit deferral were not failed attempts.
            let attempt = claims.saturating_sub(deferrals);
            match mode {
                ClaimMode::Fresh => Step::Prepare { attempt },
                // Too early for the provider to know it: wait, still unknown.
                ClaimMode::Recover if *since_last_claim < not_before => Step::Retry {
                    hand_back: State::Unknown,
                    reason: "waiting until the provider can answer a status request".into(),
                    park: p.park(
                        attempt,
                        RetryReason::StatusNotYet,
                        Some(not_before - *since_last_claim),
                    ),
                },
                ClaimMode::Recover => Step::Acquire {
                    request: Request::Status(Asked::Recovering {
                        unproven_for: resend_after.saturating_sub(*since_last_claim),
                    }),
                    attempt,
                },
            }
        }
    }
}

fn gated(gate: Gate, attempt: u32, p: &Policy<'_>) -> Step {
    if let Some(deadline) = gate.deadline
        && p.now > deadline
    {
        let reason = format!("expired: its deadline {deadline} passed before it could be sent");
        return record(State::Failed, reason);
    }
    if let Err(reason) = gate.check {
        return record(State::Rejected, reason);
    }
    if let Some(reason) = super::refund::refused(&gate.refund) {
        return record(State::Rejected, reason);
    }
    if gate.operator_hold {
        return Step::Defer(p.held());
    }
    if let Some(wait) = gate.hold {
        return Step::Defer(p.hold(wait));
    }
    Step::Acquire {
        request: Request::Submit,
        attempt,
    }
}

fn status(
    asked: Asked,
    result: Result<Status, ProviderError>,
    attempt: u32,
    p: &Policy<'_>,
) -> Step {
    match result {
        Ok(Status::NotFound) => match asked {
            // Never seen: safe to send.
            Asked::Recovering { unproven_for } if unproven_for.is_zero() => {
                Step::Prepare { attempt }
            }
            // Not seen yet, so soon after a request the provider may still be taking
            // (epay's 102 "not found, try again later"; a resend under the same invoice
            // id is a second payment at a provider that does not refuse it): ask again
            // once the not-found can prove the request never arrived.
            Asked::Recovering { unproven_for } => Step::Retry {
                hand_back: State::Unknown,
                reason: "the provider does not know it yet; too soon after the last request \
                         to send it again"
                    .into(),
                park: p.park(attempt, RetryReason::StatusNotYet, Some(unproven_for)),
            },
            Asked::AlreadyExists => failed(
                ProviderError::Unknown(
                    "the provider knows the payment id but not its status yet".into(),
                ),
                attempt,
                p,
            ),
            // Its not-found is no proof (see `Resent`): the first attempt may have been
            // executed, and the refusal may be of the payment it has.
            Asked::RefusedFresh => record(
                State::Declined,
                "refused, and the provider's status does not know the payment".into(),
            ),
            Asked::Refused => Step::Unresolved {
                outcome: reason(
                    "a resubmission after an unknown outcome was refused, and the \
                     provider's \"not found\" proves nothing: the outcome is unknown"
                        .into(),
                ),
            },
        },
        Ok(Status::Pending) => Step::Record {
            state: State::Submitted,
            outcome: Outcome::default(),
        },
        Ok(Status::ActionRequired(outcome)) => Step::Record {
            state: State::ActionRequired,
            outcome,
        },
        Ok(Status::Final { state, outcome }) => Step::Record { state, outcome },
        Err(ProviderError::Throttled { retry_after }) => {
            Step::Defer(p.throttled(retry_after, Request::Status(asked)))
        }
        // Refused again, for its status (credentials a token is refused for): nothing
        // this fleet sent with them reached the provider, the refusal stands.
        Err(ProviderError::Refused { code, message }) if asked == Asked::RefusedFresh => {
            Step::Record {
                state: State::Declined,
                outcome: Outcome {
                    code: Some(code),
                    message: Some(message),
                    ..Default::default()
                },
            }
        }
        // The status request itself was refused: that says nothing of the payment,
        // which may have been paid. It stays unknown; the reconciler keeps asking.
        Err(e) if !e.is_retryable() => Step::Unresolved {
            outcome: reason(format!(
                "the status request was refused, the outcome is unknown: {e}"
            )),
        },
        // Whatever became of the status request (even one never sent), the payment it
        // asks about may have reached the provider: it stays unknown, and a later
        // refusal is checked, never believed (found by the chaos run: a 3-D Secure
        // confirmation whose status token was not sent went back as never sent, and
        // its re-post's refusal was published `declined` for money that moved).
        Err(e @ ProviderError::Unknown(_)) => failed(e, attempt, p),
        Err(e) => failed(ProviderError::Unknown(e.to_string()), attempt, p),
    }
}

fn submission(
    result: Result<Submission, ProviderError>,
    attempt: u32,
    resent: Resent,
    p: &Policy<'_>,
) -> Step {
    match result {
        Ok(Submission::Accepted) => Step::Record {
            state: State::Submitted,
            outcome: Outcome::default(),
        },
        Ok(Submission::ActionRequired(outcome)) => Step::Record {
            state: State::ActionRequired,
            outcome,
        },
        Ok(Submission::Final { state, outcome }) => Step::Record { state, outcome },
        Err(ProviderError::AlreadyExists) => Step::Acquire {
            request: Request::Status(Asked::AlreadyExists),
            attempt,
        },
        // After an attempt that may have reached the provider, a refusal (a token, a
        // transfer) may be of the payment it has: believed only once its status proved
        // it does not have it; otherwise the status settles it.
        Err(ProviderError::Refused { .. })
            if resent == (Resent::AfterNotFound { proven: false }) =>
        {
            Step::Acquire {
                request: Request::Status(Asked::Refused),
                attempt,
            }
        }
        Err(ProviderError::Refused { .. }) if resent == Resent::Unchecked => Step::Acquire {
            request: Request::Status(Asked::RefusedFresh),
            attempt,
        },
        Err(ProviderError::Refused { code, message }) => Step::Record {
            state: State::Declined,
            outcome: Outcome {
                code: Some(code),
                message: Some(message),
                ..Default::default()
            },
        },
        Err(ProviderError::Throttled { retry_after }) => {
            Step::Defer(p.throttled(retry_after, Request::Submit))
        }
        Err(e) => failed(e, attempt, p),
    }
}

/// A provider request failed: try again later, or give up.
fn failed(error: ProviderError, attempt: u32, p: &Policy<'_>) -> Step {
    if !error.is_retryable() {
        return record(State::Failed, error.to_string());
    }
    let reached = error.may_have_reached_provider();
    if attempt >= p.max_attempts {
        if !reached {
            return record(
                State::Failed,
                format!("gave up after {attempt} attempts: {error}"),
            );
        }
        // It may have been paid: giving up is not ours to say. The reconciler keeps
        // asking the provider and settles it as the provider does.
        return Step::Unresolved {
            outcome: reason(error.to_string()),
        };
    }
    Step::Retry {
        // Not knowing whether it arrived, the next attempt must ask before sending.
        hand_back: if reached {
            State::Unknown
        } else {
            State::Received
        },
        reason: error.to_string(),
        park: p.park(attempt + 1, error.retry_reason(), None),
    }
}

/// Whether a command whose payment is still open after this delivery should come back
/// to check on it, and after which rung: the first that waits the method's `basic`
/// time. The reminder lives in the broker, so even if Redis loses everything the
/// payment is looked at again.
pub fn check_back(
    enabled: bool,
    handled: Handled,
    delivery: &crate::bus::DeliveryInfo,
    basic: Duration,
    ladder: &Ladder,
) -> Option<Rung> {
    // A copy of an open payment continues the reminders if it is one, if it was
    // redelivered (its first handling may have died before starting them), or if it is
    // a retry (the handling that parked it started none: the retry was its reminder);
    // other duplicates do not, so reminders do not multiply.
    let continues_chain = handled != Handled::Awaiting
        || delivery.check_back
        || delivery.redelivered
        || delivery.attempt > 1;
    (enabled && handled.open() && continues_chain).then(|| ladder.at_least(basic))
}

/// Whether a delivery handed back this often must be dead-lettered now, before the
/// broker does it with the card data in it.
pub fn over_delivery_limit(delivery_count: u32, limit: u32) -> Option<Step> {
    (delivery_count + 1 >= limit).then(|| Step::DeadLetter {
        class: DeadLetterReason::DeliveryLimit,
        reason: format!(
            "delivered {} times without finishing (amqp.delivery_limit {limit})",
            delivery_count + 1
        ),
    })
}

/// Whether a delivery's headers are too large to carry on: payfleet republishes a
/// command with them (to a delay queue, or the dead-letter queue), and a content
/// header larger than a frame would make the broker close the connection. Dead-lettered
/// first thing, without them.
pub fn oversize_headers(headers_len: usize, room: usize) -> Option<Step> {
    (headers_len > room).then(|| Step::DeadLetter {
        class: DeadLetterReason::Oversize,
        reason: format!(
            "its AMQP headers take {headers_len} bytes; a worker carries at most {room} \
             (the broker's frame size less what payfleet adds)"
        ),
    })
}

/// What a claim says of this delivery's submission: it follows an attempt that may have
/// reached the provider when the claim recovers one, and then only after the provider's
/// status answered "not found" (a recovery asks first), proof where `not_found_final`.
pub fn resent(claim: &Claim, not_found_final: bool) -> Resent {
    match claim {
        Claim::Claimed {
            mode: ClaimMode::Recover,
            ..
        } => Resent::AfterNotFound {
            proven: not_found_final,
        },
        Claim::Claimed { .. } if !not_found_final => Resent::Unchecked,
        _ => Resent::No,
    }
}

/// The state a claim found as a copy of a known command, for the duplicates metric.
pub fn duplicate_of(claim: &Claim) -> Option<State> {
    match claim {
        Claim::Terminal { state, .. } | Claim::Awaiting(state) => Some(*state),
        Claim::Busy => Some(State::Submitting),
        Claim::Claimed { .. } | Claim::Conflict => None,
    }
}

fn reason(text: String) -> Outcome {
    Outcome {
        reason: Some(text),
        ..Default::default()
    }
}

fn record(state: State, text: String) -> Step {
    Step::Record {
        state,
        outcome: reason(text),
    }
}

impl Policy<'_> {
    /// Parks for `attempt`: the delay grows with the attempt, and is at least
    /// `at_least` when given. Should the broker drop it (a message that expires while
    /// it shuts down), the reconciler looks at the command anyway.
    pub fn park(&self, attempt: u32, class: RetryReason, at_least: Option<Duration>) -> Park {
        let mut rung = self.ladder.for_attempt(attempt);
        if let Some(min) = at_least {
            rung = rung.max(self.ladder.at_least(min));
        }
        Park {
            attempt,
            class,
            rung,
            watch: self.watch(Duration::ZERO, rung, false),
        }
    }

    fn watch(&self, from: Duration, rung: Rung, replace: bool) -> Watch {
        Watch {
            after: from + 2 * rung.delay() + self.grace,
            replace,
        }
    }

    /// Held until the provider's working hours, `wait` away: the longest rung that does
    /// not overshoot the opening, so it is sent at most the shortest rung late, round
    /// after round until then. The claim does not count as an attempt.
    fn hold(&self, wait: Duration) -> Deferral {
        let until = self.now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        let rung = self.ladder.at_most(wait);
        Deferral {
            why: Why::WorkingHours { until },
            hand_back: State::Received,
            rung,
            expiry: Expiry::Early,
            // The reconciler leaves it alone until well after the window opens.
            watch: self.watch(wait, rung, true),
        }
    }

    /// Held by an operator: back to look again after the longest rung within
    /// [`HELD_RECHECK`], until the hold is lifted. The claim does not count as an attempt,
    /// and the reconciler leaves the command alone while it cycles.
    fn held(&self) -> Deferral {
        let rung = self.ladder.at_most(HELD_RECHECK);
        Deferral {
            why: Why::Held,
            hand_back: State::Received,
            rung,
            expiry: Expiry::Early,
            watch: self.watch(Duration::ZERO, rung, true),
        }
    }

    /// The rate limiter has no slot for `after`: the longest rung that does not
    /// overshoot it. Back early, the command keeps its ticket and goes round again;
    /// back late, its slot would go unused. Exactly the rung's delay: tickets spread a
    /// backlog's returns already.
    fn rate_limited(&self, after: Duration, ticket: Option<u64>, request: Request) -> Deferral {
        let rung = self.ladder.at_most(after);
        Deferral {
            why: Why::RateLimited { ticket },
            hand_back: request.hand_back(),
            rung,
            expiry: Expiry::Exact(rung.ms()),
            watch: self.watch(Duration::ZERO, rung, false),
        }
    }

    /// The provider answered 429: try again no earlier than the time it advised, and up
    /// to half of it later at random, so that what it throttled together does not
    /// return together (and get throttled together again).
    fn throttled(&self, retry_after: Option<Duration>, request: Request) -> Deferral {
        let advised = retry_after.unwrap_or(THROTTLED_DEFAULT).as_millis() as u64;
        let spread = advised / 2;
        let rung = self
            .ladder
            .at_least(Duration::from_millis(advised + spread));
        Deferral {
            why: Why::Throttled,
            hand_back: request.hand_back(),
            rung,
            expiry: Expiry::Spread {
                from: advised,
                spread,
            },
            watch: self.watch(Duration::ZERO, rung, false),
        }
    }
}

#[cfg(test)]
#[path = "decide_tests/mod.rs"]
mod tests;
