//! One refund command per purchase at a time ([`RefundOwner`]): when another may take
//! the purchase's refund over, and why one is refused. Pure.

use crate::state::{RefundOwner, State};

/// Whether an owner in `state` left the purchase unrefunded, so another refund command
/// may take its place: it ended without moving money. An open one may still refund it,
/// a succeeded one did, and one without a record may be between taking the purchase
/// and its claim.
pub fn may_take_over(state: Option<State>) -> bool {
    matches!(
        state,
        Some(State::Declined | State::Failed | State::Rejected)
    )
}

/// Why a refund command is refused while `owner` names another command; `None` when
/// the purchase's refund is its own.
pub fn refused(owner: &RefundOwner) -> Option<String> {
    let RefundOwner::Other { key, state } = owner else {
        return None;
    };
    Some(match state {
        Some(State::Succeeded) => format!("the purchase is already refunded by command {key}"),
        Some(s) => format!(
            "the purchase's refund is command {key}'s ({}): one refund command per purchase",
            s.as_str()
        ),
        None => {
            format!("the purchase's refund is command {key}'s: one refund command per purchase")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::IdempotencyKey;

    fn other(state: Option<State>) -> RefundOwner {
        RefundOwner::Other {
            key: IdempotencyKey::parse("rf-1").unwrap(),
            state,
        }
    }

    #[test]
    fn only_an_owner_that_ended_without_money_is_taken_over() {
        for s in [State::Declined, State::Failed, State::Rejected] {
            assert!(may_take_over(Some(s)), "{s:?}");
        }
        for s in [
            State::Received,
            State::Submitting,
            State::Submitted,
            State::Unknown,
            State::ActionRequired,
            State::Succeeded,
        ] {
            assert!(!may_take_over(Some(s)), "{s:?}");
        }
        assert!(!may_take_over(None), "no record: maybe in flight");
    }

    #[test]
    fn a_command_is_refused_while_another_owns_the_purchase() {
        assert_eq!(refused(&RefundOwner::Ours), None);
        let done = refused(&other(Some(State::Succeeded))).unwrap();
        assert_eq!(done, "the purchase is already refunded by command rf-1");
        let open = refused(&other(Some(State::Submitted))).unwrap();
        assert!(open.contains("rf-1's (submitted)"), "{open}");
        let unrecorded = refused(&other(None)).unwrap();
        assert!(unrecorded.contains("command rf-1's"), "{unrecorded}");
    }
}
