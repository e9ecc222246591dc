//! Refusals at a provider whose client does not check them against its status.

use super::answers::{asked, outcome, resubmitted};
use super::*;

#[test]
fn an_unchecked_refusal_is_settled_by_the_status_and_confirmed_only_by_a_not_found() {
    let refused = || ProviderError::Refused {
        code: "1".into(),
        message: "no 3-D Secure check pending".into(),
    };
    assert_eq!(
        resubmitted(Err(refused()), 1, Resent::Unchecked),
        Step::Acquire {
            request: Request::Status(Asked::RefusedFresh),
            attempt: 1
        }
    );
    let Step::Record { state, .. } = asked(Asked::RefusedFresh, Ok(Status::NotFound), 1) else {
        panic!("recorded")
    };
    assert_eq!(state, State::Declined);
    let paid = Status::Final {
        state: State::Succeeded,
        outcome: outcome(),
    };
    assert_eq!(
        asked(Asked::RefusedFresh, Ok(paid), 1),
        Step::Record {
            state: State::Succeeded,
            outcome: outcome()
        }
    );
}

#[test]
fn an_unchecked_refusal_whose_status_request_is_refused_too_stands() {
    let refused = ProviderError::Refused {
        code: "token:invalid_client".into(),
        message: "bad credentials".into(),
    };
    let Step::Record { state, outcome } = asked(Asked::RefusedFresh, Err(refused), 1) else {
        panic!("recorded")
    };
    assert_eq!(state, State::Declined);
    assert_eq!(outcome.code.as_deref(), Some("token:invalid_client"));
}
