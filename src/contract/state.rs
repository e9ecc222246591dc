//! The states of a payment's record (the state machine itself lives in `state`).

use super::EventStatus;

/// Where a payment is: see the diagram in `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Received,
    Submitting,
    Submitted,
    ActionRequired,
    Unknown,
    Succeeded,
    Declined,
    Failed,
    Rejected,
}

impl State {
    /// Every state, so metrics start at zero for each (extend with every new variant).
    pub const ALL: [State; 9] = [
        State::Received,
        State::Submitting,
        State::Submitted,
        State::ActionRequired,
        State::Unknown,
        State::Succeeded,
        State::Declined,
        State::Failed,
        State::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Received => "received",
            State::Submitting => "submitting",
            State::Submitted => "submitted",
            State::ActionRequired => "action_required",
            State::Unknown => "unknown",
            State::Succeeded => "succeeded",
            State::Declined => "declined",
            State::Failed => "failed",
            State::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Succeeded | State::Declined | State::Failed | State::Rejected
        )
    }

    /// The event a terminal state is announced with.
    pub fn terminal_event(self) -> Option<EventStatus> {
        match self {
            State::Succeeded => Some(EventStatus::Succeeded),
            State::Declined => Some(EventStatus::Declined),
            State::Failed => Some(EventStatus::Failed),
            State::Rejected => Some(EventStatus::Rejected),
            _ => None,
        }
    }
}
