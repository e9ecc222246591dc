//! Every branch of [`super::decide`], without I/O. Longer than the other files: one test
//! per branch, each spelling out the step it expects.

use super::*;
use crate::bus::DeliveryInfo;
use crate::contract::EventStatus;
use crate::state::{EventState, Lease, RefundOwner};
use crate::telemetry::label::{DeadLetterReason, ProviderRequest, RetryReason};

const GRACE: Duration = Duration::from_secs(30);

/// A recovery whose "not found" proves the request never arrived.
const RECOVERING: Asked = Asked::Recovering {
    unproven_for: Duration::ZERO,
};

fn ladder() -> Ladder {
    Ladder::new(&[250, 1000, 3000, 8000])
}

fn now() -> DateTime<Utc> {
    "2025-01-06T05:00:00Z".parse().unwrap()
}

fn policy(ladder: &Ladder) -> Policy<'_> {
    Policy {
        ladder,
        max_attempts: 3,
        now: now(),
        grace: GRACE,
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn rung(n: u64) -> Rung {
    let r = ladder().at_least(ms(n));
    assert_eq!(r.ms(), n, "{n} is a rung of the test ladder");
    r
}

/// A park on `rung_ms` that the reconciler watches after twice that plus the grace.
fn park(attempt: u32, class: RetryReason, rung_ms: u64) -> Park {
    Park {
        attempt,
        class,
        rung: rung(rung_ms),
        watch: Watch {
            after: 2 * ms(rung_ms) + GRACE,
            replace: false,
        },
    }
}

fn reason(text: &str) -> Outcome {
    Outcome {
        reason: Some(text.into()),
        ..Default::default()
    }
}

// ---- claims ----

fn claimed(mode: ClaimMode, attempt: u32, since: Duration) -> Claim {
    Claim::Claimed {
        lease: Lease {
            owner: "me".into(),
            fence: 1,
        },
        mode,
        attempt,
        since_last_claim: since,
        payment_id: "p-1".into(),
    }
}

fn after_claim(claim: &Claim, attempt: u32, deferrals: u32) -> Step {
    after_claim_at(claim, attempt, deferrals, Duration::ZERO)
}

/// At a provider whose "not found" proves nothing until `resend_after` after a request.
fn after_claim_at(claim: &Claim, attempt: u32, deferrals: u32, resend_after: Duration) -> Step {
    let l = ladder();
    let seen = Seen::Claim {
        claim,
        attempt,
        deferrals,
        status_not_before: Duration::from_secs(10),
        resend_after,
    };
    decide(seen, &policy(&l))
}

#[test]
fn a_new_claim_goes_to_the_gate() {
    let step = after_claim(&claimed(ClaimMode::Fresh, 1, Duration::ZERO), 1, 0);
    assert_eq!(step, Step::Prepare { attempt: 1 });
}

#[test]
fn returns_from_rate_limit_deferrals_do_not_count_as_attempts() {
    let step = after_claim(&claimed(ClaimMode::Fresh, 5, Duration::ZERO), 1, 3);
    assert_eq!(step, Step::Prepare { attempt: 2 });
}

#[test]
fn a_duplicate_of_a_finished_command_sees_its_event_out() {
    let claim = Claim::Terminal {
        state: State::Succeeded,
        event: EventState::Publishing,
    };
    let step = after_claim(&claim, 1, 0);
    assert_eq!(
        step,
        Step::EnsurePublished {
            state: State::Succeeded,
            event: EventState::Publishing
        }
    );
    assert_eq!(duplicate_of(&claim), Some(State::Succeeded));
}

#[test]
fn a_duplicate_of_an_open_payment_awaits_its_result() {
    let claim = Claim::Awaiting(State::Submitted);
    assert_eq!(after_claim(&claim, 1, 0), Step::Await(State::Submitted));
    assert_eq!(duplicate_of(&claim), Some(State::Submitted));
}

#[test]
fn a_copy_of_one_another_worker_submits_waits_on_its_attempts_rung() {
    assert_eq!(
        after_claim(&Claim::Busy, 3, 0),
        Step::Park(park(3, RetryReason::Busy, 1000))
    );
    assert_eq!(duplicate_of(&Claim::Busy), Some(State::Submitting));
}

#[test]
fn a_conflicting_body_is_a_conflict() {
    assert_eq!(after_claim(&Claim::Conflict, 1, 0), Step::Conflict);
    assert_eq!(duplicate_of(&Claim::Conflict), None);
}

#[test]
fn an_expired_lease_or_unknown_outcome_asks_the_provider_first() {
    let claim = claimed(ClaimMode::Recover, 2, Duration::from_secs(11));
    assert_eq!(
        after_claim(&claim, 2, 0),
        Step::Acquire {
            request: Request::Status(RECOVERING),
            attempt: 2
        }
    );
    assert_eq!(duplicate_of(&claim), None);
}

/// Where a "not found" proves the request never arrived only some time after it
/// (epay's 102 "try again later"), a recovery asks, and if the provider does not know
/// the payment yet, waits out the rest of that time, still unknown, before sending.
#[test]
fn a_not_found_too_soon_after_the_request_waits_before_sending_again() {
    let window = Duration::from_secs(120);
    let claim = claimed(ClaimMode::Recover, 2, Duration::from_secs(11));
    let asking = Asked::Recovering {
        unproven_for: Duration::from_secs(109),
    };
    assert_eq!(
        after_claim_at(&claim, 2, 0, window),
        Step::Acquire {
            request: Request::Status(asking),
            attempt: 2
        }
    );
    let l = ladder();
    let p = policy(&l);
    let Step::Retry {
        hand_back, park, ..
    } = decide(
        Seen::Status {
            asked: asking,
            result: Ok(Status::NotFound),
            attempt: 2,
        },
        &p,
    )
    else {
        panic!("waits")
    };
    assert_eq!(hand_back, State::Unknown);
    assert_eq!(park.class, RetryReason::StatusNotYet);
    // The longest rung, 8 s, is below the 109 s left: it comes back and asks again.
    assert_eq!(park.rung.delay(), Duration::from_secs(8));

    // Past the window the not-found is proof: it is sent.
    let late = claimed(ClaimMode::Recover, 5, Duration::from_secs(121));
    let Step::Acquire {
        request: Request::Status(asked),
        ..
    } = after_claim_at(&late, 5, 0, window)
    else {
        panic!("asks first")
    };
    assert_eq!(asked, RECOVERING);
    assert_eq!(
        decide(
            Seen::Status {
                asked,
                result: Ok(Status::NotFound),
                attempt: 5,
            },
            &p,
        ),
        Step::Prepare { attempt: 5 }
    );
}

#[test]
fn too_early_to_ask_it_waits_still_unknown_at_least_until_it_may() {
    // 10 s before the provider answers; 7.5 s gone: at least 2.5 s, so the 3 s rung
    // (above the attempt's own 250 ms).
    let claim = claimed(ClaimMode::Recover, 2, ms(7500));
    let Step::Retry {
        hand_back,
        reason,
        park: p,
    } = after_claim(&claim, 1, 0)
    else {
        panic!("a retry")
    };
    assert_eq!(hand_back, State::Unknown);
    assert!(reason.contains("status request"), "{reason}");
    assert_eq!(p, park(2, RetryReason::StatusNotYet, 3000));
    // Its own attempt's rung wins when longer.
    let claim = claimed(ClaimMode::Recover, 5, ms(9900));
    let Step::Retry { park: p, .. } = after_claim(&claim, 1, 0) else {
        panic!("a retry")
    };
    assert_eq!(p.rung.ms(), 8000);
}

// ---- the gate before sending ----

fn gate(
    deadline: Option<DateTime<Utc>>,
    check: Result<(), String>,
    hold: Option<Duration>,
) -> Step {
    gate_held(deadline, check, hold, false)
}

fn gate_held(
    deadline: Option<DateTime<Utc>>,
    check: Result<(), String>,
    hold: Option<Duration>,
    operator_hold: bool,
) -> Step {
    let l = ladder();
    let gate = Gate {
        deadline,
        check,
        hold,
        operator_hold,
        refund: RefundOwner::Ours,
    };
    decide(Seen::Gate { gate, attempt: 2 }, &policy(&l))
}

#[test]
fn a_command_that_may_go_waits_for_its_rate_limit_slot() {
    let later = now() + chrono::Duration::seconds(1);
    assert_eq!(
        gate(Some(later), Ok(()), None),
        Step::Acquire {
            request: Request::Submit,
            attempt: 2
        }
    );
}

#[test]
fn a_passed_deadline_fails_it_unsent_before_anything_else() {
    let earlier = now() - chrono::Duration::seconds(1);
    let Step::Record { state, outcome } = gate(Some(earlier), Err("bad".into()), Some(ms(5)))
    else {
        panic!("recorded")
    };
    assert_eq!(state, State::Failed);
    assert!(outcome.reason.unwrap().starts_with("expired"));
}

#[test]
fn a_failed_provider_check_rejects_it_even_outside_working_hours() {
    assert_eq!(
        gate(None, Err("no such bank".into()), Some(ms(5000))),
        Step::Record {
            state: State::Rejected,
            outcome: reason("no such bank")
        }
    );
}

#[test]
fn a_refund_of_a_purchase_another_command_refunds_is_rejected_even_while_held() {
    let l = ladder();
    let other = RefundOwner::Other {
        key: crate::contract::IdempotencyKey::parse("rf-1").unwrap(),
        state: Some(State::Succeeded),
    };
    let gate = Gate {
        deadline: None,
        check: Ok(()),
        hold: Some(ms(5000)),
        operator_hold: true,
        refund: other,
    };
    assert_eq!(
        decide(Seen::Gate { gate, attempt: 2 }, &policy(&l)),
        Step::Record {
            state: State::Rejected,
            outcome: reason("the purchase is already refunded by command rf-1")
        }
    );
}

#[test]
fn outside_working_hours_it_is_held_on_the_longest_rung_that_does_not_overshoot() {
    let Step::Defer(d) = gate(None, Ok(()), Some(ms(5000))) else {
        panic!("deferred")
    };
    assert_eq!(
        d,
        Deferral {
            why: Why::WorkingHours {
                until: now() + chrono::Duration::seconds(5)
            },
            hand_back: State::Received,
            rung: rung(3000),
            expiry: Expiry::Early,
            watch: Watch {
                after: ms(5000) + ms(6000) + GRACE,
                replace: true,
            },
        }
    );
    assert_eq!(d.why.handled(), Handled::Deferred);
    // Opening sooner than the shortest rung: the shortest.
    let Step::Defer(d) = gate(None, Ok(()), Some(ms(100))) else {
        panic!("deferred")
    };
    assert_eq!(d.rung.ms(), 250);
}

#[test]
fn an_operators_hold_parks_it_uncounted_until_lifted_even_outside_working_hours() {
    let Step::Defer(d) = gate_held(None, Ok(()), Some(ms(5000)), true) else {
        panic!("deferred")
    };
    assert_eq!(
        d,
        Deferral {
            why: Why::Held,
            hand_back: State::Received,
            rung: rung(8000),
            expiry: Expiry::Early,
            watch: Watch {
                after: ms(16000) + GRACE,
                replace: true,
            },
        }
    );
    assert_eq!(d.why.handled(), Handled::Deferred);
}

#[test]
fn a_hold_never_keeps_a_command_past_its_deadline_nor_an_invalid_one() {
    let earlier = now() - chrono::Duration::seconds(1);
    let Step::Record { state, .. } = gate_held(Some(earlier), Ok(()), None, true) else {
        panic!("recorded")
    };
    assert_eq!(state, State::Failed);
    let Step::Record { state, .. } = gate_held(None, Err("no such bank".into()), None, true) else {
        panic!("recorded")
    };
    assert_eq!(state, State::Rejected);
}

// ---- the rate limiter ----

fn slot(decision: Decision, request: Request) -> Step {
    let l = ladder();
    let seen = Seen::Slot {
        decision,
        request,
        attempt: 2,
    };
    decide(seen, &policy(&l))
}

#[test]
fn a_slot_now_makes_the_request() {
    let go = Decision::Go { waited: ms(3) };
    for request in [Request::Submit, Request::Status(RECOVERING)] {
        assert_eq!(
            slot(go, request),
            Step::Call {
                request,
                attempt: 2
            }
        );
    }
}

#[test]
fn a_slot_further_away_defers_exactly_one_rung_under_it_keeping_the_ticket() {
    let far = Decision::Defer {
        after: ms(2000),
        ticket: Some(7),
    };
    let Step::Defer(d) = slot(far, Request::Submit) else {
        panic!("deferred")
    };
    assert_eq!(
        d,
        Deferral {
            why: Why::RateLimited { ticket: Some(7) },
            hand_back: State::Received,
            rung: rung(1000),
            expiry: Expiry::Exact(1000),
            watch: Watch {
                after: ms(2000) + GRACE,
                replace: false,
            },
        }
    );
    assert_eq!(d.why.handled(), Handled::Retrying);
    // Before a status query it stays unknown: it must still be asked about.
    let Step::Defer(d) = slot(far, Request::Status(Asked::AlreadyExists)) else {
        panic!("deferred")
    };
    assert_eq!(d.hand_back, State::Unknown);
}

mod answers;
mod refusals;
