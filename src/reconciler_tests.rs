//! The reconciler's verdicts, per branch.

use super::*;

const MIN: Duration = Duration::from_secs(60);

/// ECommPay's (`true`: declines at its threshold, 3061 is final) or epay's.
fn timing(ecommpay: bool) -> Timing {
    Timing {
        basic: 5 * MIN,
        threshold: 60 * MIN,
        declines_at_threshold: ecommpay,
        status_not_before: Duration::from_secs(10),
        not_found_final: ecommpay,
        resend_after: Duration::ZERO,
    }
}

fn action() -> Outcome {
    Outcome {
        action: Some(serde_json::json!({"url": "https://bank.example/pay"})),
        ..Default::default()
    }
}

fn verdict(status: Status, state: State, age: Duration, declines: bool) -> Verdict {
    judge(Ok(status), state, age, &timing(declines))
}

#[test]
fn a_final_status_settles() {
    let status = Status::Final {
        state: State::Succeeded,
        outcome: Outcome::default(),
    };
    let got = verdict(status, State::Submitted, MIN, false);
    assert!(matches!(
        got,
        Verdict::Settle(State::Succeeded, _, Action::Settled)
    ));
}

#[test]
fn a_final_not_found_fails_only_what_was_never_received() {
    for state in [State::Unknown, State::Received] {
        let got = verdict(Status::NotFound, state, MIN, true);
        assert!(matches!(
            got,
            Verdict::Settle(State::Failed, _, Action::NeverSent)
        ));
    }
    assert_eq!(
        verdict(Status::NotFound, State::Submitted, MIN, true),
        Verdict::Wait
    );
    let late = verdict(Status::NotFound, State::Submitted, 67 * MIN, true);
    assert!(matches!(late, Verdict::Settle(State::Failed, _, _)));
}

/// epay's 102 "Invoice not found, try again later or check transaction type": after
/// a 488 whose check-status lagged, the money may have moved. Never failed: open,
/// and overdue for an operator past the threshold.
#[test]
fn a_not_found_that_proves_nothing_never_fails_it() {
    for state in [State::Unknown, State::Received, State::Submitted] {
        assert_eq!(
            verdict(Status::NotFound, state, MIN, false),
            Verdict::Wait,
            "{state:?}"
        );
        assert_eq!(
            verdict(Status::NotFound, state, 121 * MIN, false),
            Verdict::Overdue(OVERDUE_NOT_FOUND),
            "{state:?}"
        );
    }
}

/// A refused status request (epay 104/106, a refused token, a Gate error other than
/// 3061) says nothing of the payment: it waits, overdue past the threshold, for any
/// provider; a transient failure just waits.
#[test]
fn a_refused_status_request_never_settles_it() {
    let refused = || ProviderError::Refused {
        code: "check-status:106".into(),
        message: "incorrect terminal id".into(),
    };
    for ecommpay in [true, false] {
        for state in [State::Unknown, State::Submitted] {
            let t = timing(ecommpay);
            assert_eq!(judge(Err(refused()), state, MIN, &t), Verdict::Wait);
            assert_eq!(
                judge(Err(refused()), state, 67 * MIN, &t),
                Verdict::Overdue(OVERDUE_REFUSED)
            );
            let lost = ProviderError::Unknown("HTTP 502".into());
            assert_eq!(judge(Err(lost), state, 67 * MIN, &t), Verdict::Wait);
        }
    }
}

#[test]
fn lost_action_data_is_recovered_from_the_status() {
    let got = verdict(
        Status::ActionRequired(action()),
        State::Submitted,
        6 * MIN,
        true,
    );
    assert_eq!(
        got,
        Verdict::Settle(State::ActionRequired, action(), Action::ActionRecovered)
    );
    // Recorded already, or without data to send the customer with: nothing new.
    let recorded = verdict(
        Status::ActionRequired(action()),
        State::ActionRequired,
        MIN,
        true,
    );
    assert_eq!(recorded, Verdict::Wait);
    let empty = verdict(
        Status::ActionRequired(Outcome::default()),
        State::Submitted,
        MIN,
        true,
    );
    assert_eq!(empty, Verdict::Wait);
}

#[test]
fn past_the_threshold_only_a_provider_that_declines_is_said_to() {
    for status in [Status::Pending, Status::ActionRequired(action())] {
        let ecommpay = verdict(status.clone(), State::Submitted, 67 * MIN, true);
        assert!(matches!(
            ecommpay,
            Verdict::Settle(State::Declined, _, Action::Expired)
        ));
        let epay = verdict(status, State::Submitted, 67 * MIN, false);
        assert_eq!(epay, Verdict::Overdue(OVERDUE));
    }
    assert_eq!(
        verdict(Status::Pending, State::Submitted, MIN, false),
        Verdict::Wait
    );
}

/// The provider's threshold runs from its receipt, a little after the request: for a
/// tenth of the threshold more, a payment still in progress is left for the provider
/// to decline itself.
#[test]
fn a_provider_is_given_a_tenth_of_its_threshold_more_to_decline_itself() {
    assert_eq!(
        verdict(Status::Pending, State::Submitted, 65 * MIN, true),
        Verdict::Wait
    );
    assert!(matches!(
        verdict(Status::Pending, State::Submitted, 66 * MIN + MIN / 60, true),
        Verdict::Settle(State::Declined, _, Action::Expired)
    ));
}

#[test]
fn no_answer_waits() {
    let lost = ProviderError::NotSent("connect refused".into());
    assert_eq!(
        judge(Err(lost), State::Unknown, 67 * MIN, &timing(true)),
        Verdict::Wait
    );
}

#[test]
fn an_overdue_payment_is_noted_once_for_each_reason() {
    let first = overdue_note(None, OVERDUE).unwrap();
    assert_eq!(first, format!("overdue: {OVERDUE}"));
    assert_eq!(overdue_note(Some(&first), OVERDUE), None);
    // The note script appends it to what was noted before: only its own part.
    let earlier = "callback refused: amount differs";
    assert_eq!(overdue_note(Some(earlier), OVERDUE), Some(first.clone()));
    let both = format!("{earlier}; {first}");
    assert_eq!(overdue_note(Some(&both), OVERDUE), None);
    assert_eq!(
        overdue_note(Some(&both), OVERDUE_REFUSED),
        Some(format!("overdue: {OVERDUE_REFUSED}"))
    );
}

#[test]
fn parked_commands_wait_for_a_stalled_delay_queue_for_a_while_only() {
    assert!(!hold_for_stall(None), "every delay queue flows");
    assert!(hold_for_stall(Some(Duration::ZERO)));
    assert!(hold_for_stall(Some(STALL_HOLD - Duration::from_millis(1))));
    assert!(
        !hold_for_stall(Some(STALL_HOLD)),
        "past the hold, judged again"
    );
}

#[test]
fn silence_counts_from_the_reconcilers_own_last_outage_at_most() {
    assert_eq!(silence(10 * MIN, None), 10 * MIN);
    assert_eq!(silence(10 * MIN, Some(MIN)), MIN);
    assert_eq!(silence(MIN, Some(10 * MIN)), MIN);
}

#[test]
fn an_overdue_payment_is_asked_again_after_five_basic_times_at_most_five_minutes() {
    let epay = Timing {
        basic: MIN,
        ..timing(false)
    };
    assert_eq!(overdue_recheck(&epay), 5 * MIN);
    assert_eq!(
        overdue_recheck(&timing(true)),
        RECHECK_CAP,
        "a 5 min basic time"
    );
    // A chaos run's time scale (0.005) shrinks it with the basic time.
    let scaled = Timing {
        basic: MIN.mul_f64(0.005),
        ..timing(false)
    };
    assert_eq!(overdue_recheck(&scaled), Duration::from_millis(1500));
}
