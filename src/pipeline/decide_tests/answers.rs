//! The decision on what providers answer, and on parks outside a claim.

use super::*;

// ---- provider answers ----

fn submitted(result: Result<Submission, ProviderError>, attempt: u32) -> Step {
    resubmitted(result, attempt, Resent::No)
}

pub(super) fn resubmitted(
    result: Result<Submission, ProviderError>,
    attempt: u32,
    resent: Resent,
) -> Step {
    let l = ladder();
    let seen = Seen::Submission {
        result,
        attempt,
        resent,
    };
    decide(seen, &policy(&l))
}

pub(super) fn asked(asked: Asked, result: Result<Status, ProviderError>, attempt: u32) -> Step {
    let l = ladder();
    let seen = Seen::Status {
        asked,
        result,
        attempt,
    };
    decide(seen, &policy(&l))
}

pub(super) fn outcome() -> Outcome {
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

/// epay: a token or transfer refused on the attempt after one whose outcome was unknown
/// may be a refusal of the payment epay has (the first may have executed), and its 102
/// proved nothing: the status settles it, never the refusal.
#[test]
fn a_refused_resubmission_after_an_unproven_not_found_asks_the_status() {
    let refused = || ProviderError::Refused {
        code: "token:invalid_request".into(),
        message: "token refused".into(),
    };
    let unproven = Resent::AfterNotFound { proven: false };
    assert_eq!(
        resubmitted(Err(refused()), 2, unproven),
        Step::Acquire {
            request: Request::Status(Asked::Refused),
            attempt: 2
        }
    );
    // ECommPay's 3061, just asked, proved Gate never had it: the refusal is believed.
    let proven = Resent::AfterNotFound { proven: true };
    let Step::Record { state, outcome } = resubmitted(Err(refused()), 2, proven) else {
        panic!("recorded")
    };
    assert_eq!(state, State::Declined);
    assert_eq!(outcome.code.as_deref(), Some("token:invalid_request"));
}

#[test]
fn a_refused_resubmission_is_settled_by_the_status() {
    // Not found, again without proof: unknown, for the reconciler; never declined.
    let Step::Unresolved { outcome: unknown } = asked(Asked::Refused, Ok(Status::NotFound), 2)
    else {
        panic!("unresolved")
    };
    assert!(unknown.reason.unwrap().contains("refused"));
    // The provider has it: what it says is recorded.
    let paid = Status::Final {
        state: State::Succeeded,
        outcome: outcome(),
    };
    assert_eq!(
        asked(Asked::Refused, Ok(paid), 2),
        Step::Record {
            state: State::Succeeded,
            outcome: outcome()
        }
    );
    assert_eq!(
        asked(Asked::Refused, Ok(Status::Pending), 2),
        Step::Record {
            state: State::Submitted,
            outcome: Outcome::default()
        }
    );
    // No answer: asked again later, unknown.
    let lost = ProviderError::Unknown("HTTP 502".into());
    let Step::Retry { hand_back, .. } = asked(Asked::Refused, Err(lost), 2) else {
        panic!("a retry")
    };
    assert_eq!(hand_back, State::Unknown);
}

#[test]
fn only_a_recovering_claim_makes_a_resubmission() {
    assert_eq!(
        resent(&claimed(ClaimMode::Fresh, 2, ms(0)), true),
        Resent::No
    );
    // Where refusals are not checked by the client, a fresh record proves nothing:
    // Redis may have forgotten an attempt.
    assert_eq!(
        resent(&claimed(ClaimMode::Fresh, 2, ms(0)), false),
        Resent::Unchecked
    );
    for proven in [true, false] {
        assert_eq!(
            resent(&claimed(ClaimMode::Recover, 2, ms(0)), proven),
            Resent::AfterNotFound { proven }
        );
    }
    assert_eq!(resent(&Claim::Busy, false), Resent::No);
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
    let Step::Defer(d) = asked(RECOVERING, Err(no_advice), 1) else {
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
        asked(RECOVERING, Err(e.clone()), 4),
        Step::Unresolved {
            outcome: reason(&e.to_string())
        }
    );
}

#[test]
fn a_status_query_the_provider_refuses_leaves_it_unknown() {
    // A refused status request (a bad token, terminal or signature) says nothing of the
    // payment: never failed, left unknown with the reason for the reconciler.
    let refused = ProviderError::Refused {
        code: "check-status:104".into(),
        message: "terminal absent in token".into(),
    };
    for how in [RECOVERING, Asked::AlreadyExists] {
        for attempt in [1, 3] {
            let Step::Unresolved { outcome } = asked(how, Err(refused.clone()), attempt) else {
                panic!("unresolved")
            };
            let why = outcome.reason.unwrap();
            assert!(why.contains("status request was refused"), "{why}");
            assert!(why.contains("check-status:104"), "{why}");
        }
    }
}

#[test]
fn a_payment_the_provider_never_saw_is_sent_after_all() {
    assert_eq!(
        asked(RECOVERING, Ok(Status::NotFound), 2),
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
    for how in [RECOVERING, Asked::AlreadyExists] {
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
fn headers_too_large_to_carry_on_are_dead_lettered() {
    assert_eq!(oversize_headers(129_024, 129_024), None);
    assert_eq!(
        oversize_headers(129_025, 129_024),
        Some(Step::DeadLetter {
            class: DeadLetterReason::Oversize,
            reason: "its AMQP headers take 129025 bytes; a worker carries at most 129024 \
                     (the broker's frame size less what payfleet adds)"
                .into()
        })
    );
}

#[test]
fn requests_count_against_their_class_and_hand_back_as_they_stand() {
    assert_eq!(Request::Submit.class(), crate::ratelimit::PAYMENT);
    assert_eq!(
        Request::Status(RECOVERING).class(),
        crate::ratelimit::STATUS
    );
    assert_eq!(Request::Submit.label(), ProviderRequest::Submit);
    assert_eq!(
        Request::Status(Asked::AlreadyExists).label(),
        ProviderRequest::Status
    );
}

#[test]
fn a_status_request_never_sent_leaves_the_payment_unknown() {
    let e = ProviderError::NotSent("token: epay did not answer in time".into());
    for how in [RECOVERING, Asked::AlreadyExists, Asked::Refused] {
        let Step::Retry { hand_back, .. } = asked(how, Err(e.clone()), 1) else {
            panic!("a retry")
        };
        assert_eq!(hand_back, State::Unknown, "{how:?}");
    }
    assert_eq!(
        asked(Asked::AlreadyExists, Err(e.clone()), 4),
        Step::Unresolved {
            outcome: reason(&ProviderError::Unknown(e.to_string()).to_string())
        }
    );
}
