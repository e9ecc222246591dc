//! What replaying one dead letter may do, decided without I/O from what its body, its
//! command's Redis record and its dead-letter reason say.
//!
//! A replay only ever puts the command back on its original routing key, for a worker
//! to handle as any other copy: the worker's claim on the record decides, so a payment
//! that may have reached the provider is asked about (status first) or waited for,
//! never sent a second time, and a final one only has its event published. The judge
//! keeps dead what a worker could not handle better now, and what no record can vouch
//! for; it takes out of the queue what a worker would have nothing left to do for (a
//! final payment whose event is out).

use crate::state::State;
use crate::telemetry::label::DeadLetterReason;
use serde::Serialize;

/// What a dead letter's body is, decoded as a worker decodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A valid command.
    Valid,
    /// Has a key but is no valid command: a worker would reject it. Card payments are
    /// dead-lettered with their card data redacted, which leaves them here.
    Invalid(String),
    /// No key: a worker would dead-letter it again.
    Undecodable(String),
}

/// What the command's record says, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub state: State,
    /// Whether the record was made by this body (same fingerprint); a record a
    /// callback made before the command was seen has none and counts as the same.
    pub same_body: bool,
    /// Whether the event announcing `state` is confirmed by the broker.
    pub announced: bool,
}

/// What to do with one dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Verdict {
    /// Republish under its original routing key.
    Republish { why: Why },
    /// Its payment is final and its event is out: nothing is left to do for it, so
    /// the replay removes it (nothing is sent; an `operator.dead_removed` event keeps
    /// the trace).
    AlreadyFinal { state: &'static str },
    /// Left in the queue, for this reason.
    StayDead { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// It never reached the provider: the worker sends it.
    NeverSent,
    /// It may have reached the provider: the worker asks for its status or waits for
    /// its result, and sends it only if the provider never had it.
    MayHaveReached,
    /// Its payment is final but its event is not confirmed: the worker publishes the
    /// event and sends nothing.
    Unannounced,
}

impl Why {
    pub fn describe(self) -> &'static str {
        match self {
            Why::NeverSent => "it never reached the provider: a worker sends it",
            Why::MayHaveReached => {
                "it may have reached the provider: a worker asks for its status (or waits \
                 for its result) and sends it only if the provider never had it"
            }
            Why::Unannounced => {
                "its payment is final but its event is not confirmed out: a worker \
                 publishes the event and sends nothing"
            }
        }
    }
}

/// The verdict for one dead letter. `record_may_have_expired`: it was dead-lettered
/// longer ago than records are kept (`redis.retention_ms`), so a missing record says
/// nothing.
pub fn judge(
    body: &Body,
    record: Option<&Found>,
    class: Option<DeadLetterReason>,
    record_may_have_expired: bool,
) -> Verdict {
    let dead = |reason: &str| Verdict::StayDead {
        reason: reason.to_owned(),
    };
    match body {
        Body::Undecodable(why) => return dead(&format!("its body does not decode: {why}")),
        Body::Invalid(why) => {
            return dead(&format!(
                "its body is not a valid command ({why}), so a worker would reject it: its \
                 publisher must send a corrected one (a card payment's dead letter has its \
                 card data redacted, so it is never valid)"
            ));
        }
        Body::Valid => {}
    }
    if class == Some(DeadLetterReason::IdempotencyConflict) {
        return dead("its key is another payment's: replaying it cannot help");
    }
    match record {
        Some(found) if !found.same_body => dead("its key's record is of a different body"),
        Some(found) if found.state.is_terminal() && found.announced => Verdict::AlreadyFinal {
            state: found.state.as_str(),
        },
        // The claim finds it final and publishes its event; no request is made.
        Some(found) if found.state.is_terminal() => Verdict::Republish {
            why: Why::Unannounced,
        },
        // Handed back for a retry: the last attempt is known not to have reached it.
        Some(Found {
            state: State::Received,
            ..
        }) => Verdict::Republish {
            why: Why::NeverSent,
        },
        // submitting, submitted, action_required, unknown: the claim finds the record
        // and asks the provider (or waits for it) before anything is sent.
        Some(_) => Verdict::Republish {
            why: Why::MayHaveReached,
        },
        None if record_may_have_expired => dead(
            "dead-lettered longer ago than records are kept: whether it reached the \
             provider cannot be told; ask the provider, then publish it again if it never did",
        ),
        // A worker records a command (its claim) before sending it: without a record,
        // no worker ever sent it, whatever the reason (a crash loop before the claim).
        None => Verdict::Republish {
            why: Why::NeverSent,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Body {
        Body::Valid
    }

    fn found(state: State) -> Found {
        Found {
            state,
            same_body: true,
            announced: true,
        }
    }

    const FINAL: [State; 4] = [
        State::Succeeded,
        State::Declined,
        State::Failed,
        State::Rejected,
    ];

    fn republish(why: Why) -> Verdict {
        Verdict::Republish { why }
    }

    #[test]
    fn a_body_that_does_not_decode_stays_dead_whatever_its_record() {
        for body in [
            Body::Undecodable("not JSON".into()),
            Body::Invalid("details must be an object".into()),
        ] {
            for record in [None, Some(found(State::Submitted))] {
                let v = judge(&body, record.as_ref(), None, false);
                assert!(matches!(v, Verdict::StayDead { .. }), "{body:?}: {v:?}");
            }
        }
    }

    #[test]
    fn an_idempotency_conflict_stays_dead() {
        let class = Some(DeadLetterReason::IdempotencyConflict);
        let v = judge(&valid(), Some(&found(State::Succeeded)), class, false);
        assert!(matches!(v, Verdict::StayDead { reason } if reason.contains("another payment")));
        let v = judge(&valid(), None, class, false);
        assert!(matches!(v, Verdict::StayDead { .. }));
    }

    #[test]
    fn a_record_of_another_body_keeps_it_dead() {
        for state in [State::Submitted, State::Succeeded] {
            let other = Found {
                same_body: false,
                ..found(state)
            };
            let v = judge(&valid(), Some(&other), None, false);
            assert!(matches!(v, Verdict::StayDead { reason } if reason.contains("different body")));
        }
    }

    #[test]
    fn a_final_payment_whose_event_is_out_is_already_final() {
        for state in FINAL {
            for expired in [false, true] {
                let class = Some(DeadLetterReason::DeliveryLimit);
                assert_eq!(
                    judge(&valid(), Some(&found(state)), class, expired),
                    Verdict::AlreadyFinal {
                        state: state.as_str()
                    }
                );
            }
        }
    }

    #[test]
    fn a_final_payment_whose_event_is_not_confirmed_is_republished_for_its_event() {
        for state in FINAL {
            let unannounced = Found {
                announced: false,
                ..found(state)
            };
            let class = Some(DeadLetterReason::DeliveryLimit);
            assert_eq!(
                judge(&valid(), Some(&unannounced), class, false),
                republish(Why::Unannounced),
                "{state:?}"
            );
        }
    }

    #[test]
    fn a_payment_that_may_have_reached_the_provider_is_republished_for_its_status() {
        for state in [
            State::Submitting,
            State::Submitted,
            State::ActionRequired,
            State::Unknown,
        ] {
            for expired in [false, true] {
                let class = Some(DeadLetterReason::DeliveryLimit);
                assert_eq!(
                    judge(&valid(), Some(&found(state)), class, expired),
                    republish(Why::MayHaveReached),
                    "{state:?}"
                );
            }
        }
    }

    #[test]
    fn a_command_never_sent_is_republished_to_be_sent() {
        let class = Some(DeadLetterReason::DeliveryLimit);
        assert_eq!(
            judge(&valid(), Some(&found(State::Received)), class, false),
            republish(Why::NeverSent)
        );
        for class in [
            None,
            Some(DeadLetterReason::DeliveryLimit),
            Some(DeadLetterReason::Oversize),
        ] {
            assert_eq!(
                judge(&valid(), None, class, false),
                republish(Why::NeverSent)
            );
        }
    }

    #[test]
    fn without_a_record_that_may_have_expired_nothing_can_be_told() {
        let v = judge(&valid(), None, Some(DeadLetterReason::Oversize), true);
        assert!(matches!(v, Verdict::StayDead { reason } if reason.contains("ask the provider")));
    }
}
