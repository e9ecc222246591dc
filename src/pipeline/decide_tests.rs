//! Every branch of [`super::decide`], without I/O. Longer than the other files: one test
//! per branch, each spelling out the step it expects.

use super::*;
use crate::bus::DeliveryInfo;
use crate::contract::EventStatus;
use crate::state::{EventState, Lease};
use crate::telemetry::label::{DeadLetterReason, ProviderRequest, RetryReason};

const GRACE: Duration = Duration::from_secs(30);

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
    }
}

fn after_claim(claim: &Claim, attempt: u32, deferrals: u32) -> Step {
    let l = ladder();
    let seen = Seen::Claim {
        claim,
        attempt,
        deferrals,
        status_not_before: Duration::from_secs(10),
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
            request: Request::Status(Asked::Recovering),
            attempt: 2
        }
    );
    assert_eq!(duplicate_of(&claim), None);
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
    let l = ladder();
    let gate = Gate {
        deadline,
        check,
        hold,
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
    for request in [Request::Submit, Request::Status(Asked::Recovering)] {
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

// ---- provider answers ----

fn submitted(result: Result<Submission, ProviderError>, attempt: u32) -> Step {
    let l = ladder();
    decide(Seen::Submission { result, attempt }, &policy(&l))
}

fn asked(asked: Asked, result: Result<Status, ProviderError>, attempt: u32) -> Step {
    let l = ladder();
    let seen = Seen::Status {
        asked,
        result,
        attempt,
    };
    decide(seen, &policy(&l))
}

fn outcome() -> Outcome {
    Outcome {
        code: Some("0".into()),
        ..Default::default()
    }
}

#[test]
fn an_accepted_submission_is_recorded_submitted() {
    assert_eq!(
        submitted(Ok(Submission::Accepted), 1),
        Step::Record {
            state: State::Submitted,
            outcome: Outcome::default()
        }
    );
}

#[test]
fn what_the_provider_says_at_once_is_recorded() {
    assert_eq!(
        submitted(Ok(Submission::ActionRequired(outcome())), 1),
        Step::Record {
            state: State::ActionRequired,
            outcome: outcome()
        }
    );
    let fin = Submission::Final {
        state: State::Succeeded,
        outcome: outcome(),
    };
    assert_eq!(
        submitted(Ok(fin), 1),
        Step::Record {
            state: State::Succeeded,
            outcome: outcome()
        }
    );
}

#[test]
fn a_refused_submission_is_declined_with_the_providers_words() {
    let refused = ProviderError::Refused {
        code: "3061".into(),
        message: "limit".into(),
    };
    let Step::Record { state, outcome } = submitted(Err(refused), 1) else {
        panic!("recorded")
    };
    assert_eq!(state, State::Declined);
    assert_eq!(outcome.code.as_deref(), Some("3061"));
    assert_eq!(outcome.message.as_deref(), Some("limit"));
}

#[test]
fn already_exists_asks_for_the_status_through_the_rate_limit() {
    assert_eq!(
        submitted(Err(ProviderError::AlreadyExists), 2),
        Step::Acquire {
            request: Request::Status(Asked::AlreadyExists),
            attempt: 2
        }
    );
}

#[test]
fn a_429_defers_at_least_the_advised_time_spread_by_half_of_it() {
    let throttled = ProviderError::Throttled {
        retry_after: Some(Duration::from_secs(2)),
    };
    let Step::Defer(d) = submitted(Err(throttled), 1) else {
        panic!("deferred")
    };
    assert_eq!(
        d,
        Deferral {
            why: Why::Throttled,
            hand_back: State::Received,
            rung: rung(3000),
            expiry: Expiry::Spread {
                from: 2000,
                spread: 1000
            },
            watch: Watch {
                after: ms(6000) + GRACE,
                replace: false,
            },
        }
    );
    assert_eq!(d.why.handled(), Handled::Retrying);
    // No advice: a second (1.5 s with its spread: the 3 s rung); kept unknown when it
    // throttled a status query.
    let no_advice = ProviderError::Throttled { retry_after: None };
    let Step::Defer(d) = asked(Asked::Recovering, Err(no_advice), 1) else {
        panic!("deferred")
    };
    assert_eq!(d.hand_back, State::Unknown);
    assert_eq!(
        d.expiry,
        Expiry::Spread {
            from: 1000,
            spread: 500
        }
    );
    assert_eq!(d.rung.ms(), 3000);
}

#[test]
fn an_error_that_cannot_have_reached_the_provider_retries_as_new() {
    let e = ProviderError::NotSent("connect refused".into());
    assert_eq!(
        submitted(Err(e.clone()), 1),
        Step::Retry {
            hand_back: State::Received,
            reason: e.to_string(),
            park: park(2, RetryReason::NotSent, 250),
        }
    );
}

#[test]
fn an_error_that_may_have_reached_it_retries_asking_first() {
    let e = ProviderError::Unknown("timeout".into());
    assert_eq!(
        submitted(Err(e.clone()), 2),
        Step::Retry {
            hand_back: State::Unknown,
            reason: e.to_string(),
            park: park(3, RetryReason::Unknown, 1000),
        }
    );
}

#[test]
fn spent_attempts_fail_a_payment_that_never_reached_the_provider() {
    let e = ProviderError::NotSent("connect refused".into());
    let Step::Record { state, outcome } = submitted(Err(e), 3) else {
        panic!("recorded")
    };
    assert_eq!(state, State::Failed);
    assert_eq!(
        outcome.reason.as_deref(),
        Some("gave up after 3 attempts: not sent: connect refused")
    );
}

#[test]
fn spent_attempts_leave_a_payment_that_may_have_reached_it_unresolved() {
    let e = ProviderError::Unknown("timeout".into());
    assert_eq!(
        submitted(Err(e.clone()), 3),
        Step::Unresolved {
            outcome: reason(&e.to_string())
        }
    );
    assert_eq!(
        asked(Asked::Recovering, Err(e.clone()), 4),
        Step::Unresolved {
            outcome: reason(&e.to_string())
        }
    );
}

#[test]
fn a_status_query_the_provider_refuses_fails_it() {
    let refused = ProviderError::Refused {
        code: "400".into(),
        message: "bad signature".into(),
    };
    assert_eq!(
        asked(Asked::Recovering, Err(refused.clone()), 1),
        Step::Record {
            state: State::Failed,
            outcome: reason(&refused.to_string())
        }
    );
}

#[test]
fn a_payment_the_provider_never_saw_is_sent_after_all() {
    assert_eq!(
        asked(Asked::Recovering, Ok(Status::NotFound), 2),
        Step::Prepare { attempt: 2 }
    );
}

#[test]
fn an_id_the_provider_knows_without_a_status_is_asked_about_again() {
    // "Already exists" then "not found": it may have been processed.
    let Step::Retry {
        hand_back,
        reason,
        park: p,
    } = asked(Asked::AlreadyExists, Ok(Status::NotFound), 1)
    else {
        panic!("a retry")
    };
    assert_eq!(hand_back, State::Unknown);
    assert!(reason.contains("knows the payment id"), "{reason}");
    assert_eq!(p, park(2, RetryReason::Unknown, 250));
    // Spent: left to the reconciler, never failed.
    assert!(matches!(
        asked(Asked::AlreadyExists, Ok(Status::NotFound), 3),
        Step::Unresolved { .. }
    ));
}

#[test]
fn what_the_status_says_is_recorded() {
    for how in [Asked::Recovering, Asked::AlreadyExists] {
        assert_eq!(
            asked(how, Ok(Status::Pending), 1),
            Step::Record {
                state: State::Submitted,
                outcome: Outcome::default()
            }
        );
        assert_eq!(
            asked(how, Ok(Status::ActionRequired(outcome())), 1),
            Step::Record {
                state: State::ActionRequired,
                outcome: outcome()
            }
        );
        let fin = Status::Final {
            state: State::Declined,
            outcome: outcome(),
        };
        assert_eq!(
            asked(how, Ok(fin), 1),
            Step::Record {
                state: State::Declined,
                outcome: outcome()
            }
        );
    }
}

// ---- parks outside a claim, check-backs, triage ----

#[test]
fn a_park_climbs_the_ladder_with_its_attempt() {
    let l = ladder();
    let p = policy(&l);
    assert_eq!(
        p.park(1, RetryReason::EventPending, None),
        park(1, RetryReason::EventPending, 250)
    );
    assert_eq!(
        p.park(4, RetryReason::Busy, None),
        park(4, RetryReason::Busy, 3000)
    );
    assert_eq!(
        p.park(40, RetryReason::Busy, None),
        park(40, RetryReason::Busy, 8000)
    );
}

fn info(check_back: bool, redelivered: bool, attempt: u32) -> DeliveryInfo {
    let mut info = DeliveryInfo::default();
    (info.check_back, info.redelivered, info.attempt) = (check_back, redelivered, attempt);
    info
}

#[test]
fn an_open_payment_comes_back_after_the_first_rung_past_its_basic_time() {
    let l = ladder();
    let accepted = Handled::Event(EventStatus::Accepted);
    let first = info(false, false, 1);
    assert_eq!(
        check_back(true, accepted, &first, ms(900), &l),
        Some(rung(1000))
    );
    assert_eq!(
        check_back(true, accepted, &first, ms(60_000), &l),
        Some(rung(8000))
    );
    assert_eq!(check_back(false, accepted, &first, ms(900), &l), None);
    for closed in [
        Handled::Event(EventStatus::Succeeded),
        Handled::Retrying,
        Handled::Duplicate,
        Handled::Fenced,
        Handled::DeadLettered,
    ] {
        assert_eq!(check_back(true, closed, &first, ms(900), &l), None);
    }
    for open in [
        Handled::Event(EventStatus::ActionRequired),
        Handled::Event(EventStatus::Deferred),
        Handled::Unresolved,
        Handled::RecordLost,
    ] {
        assert!(check_back(true, open, &first, ms(900), &l).is_some());
    }
}

#[test]
fn only_a_copy_that_continues_the_reminders_of_an_awaited_payment_checks_back() {
    let l = ladder();
    let check = |i: &DeliveryInfo| check_back(true, Handled::Awaiting, i, ms(900), &l);
    assert_eq!(check(&info(false, false, 1)), None, "a plain duplicate");
    assert!(check(&info(true, false, 1)).is_some(), "a check-back");
    assert!(check(&info(false, true, 1)).is_some(), "a redelivery");
    assert!(check(&info(false, false, 2)).is_some(), "a retry");
}

#[test]
fn a_delivery_about_to_reach_the_limit_is_dead_lettered_first() {
    assert_eq!(over_delivery_limit(18, 20), None);
    assert_eq!(
        over_delivery_limit(19, 20),
        Some(Step::DeadLetter {
            class: DeadLetterReason::DeliveryLimit,
            reason: "delivered 20 times without finishing (amqp.delivery_limit 20)".into()
        })
    );
}

#[test]
fn requests_count_against_their_class_and_hand_back_as_they_stand() {
    assert_eq!(Request::Submit.class(), crate::ratelimit::PAYMENT);
    assert_eq!(
        Request::Status(Asked::Recovering).class(),
        crate::ratelimit::STATUS
    );
    assert_eq!(Request::Submit.label(), ProviderRequest::Submit);
    assert_eq!(
        Request::Status(Asked::AlreadyExists).label(),
        ProviderRequest::Status
    );
}
