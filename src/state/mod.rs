//! Money safety: one Redis record per idempotency key, changed only by the atomic
//! scripts in `scripts/`.
//!
//! ```text
//! received ─▶ submitting (leased to one worker, fenced) ─▶ submitted ─▶ succeeded | declined | failed
//!                 │   ▲                                        (callback or status query)
//!                 ▼   │ status query first
//!              unknown
//! rejected: invalid, never sent
//! ```
//!
//! The provider always receives the same payment id for one key, on every attempt, so
//! its refusal of a known id plus a status query guard against paying twice even when
//! this record is lost.

mod changes;
mod events;
mod index;
mod record;
mod store;

pub use changes::{Claim, ClaimMode, Lease, RejectVerdict, Settle, Transition};
pub use events::EventState;
pub use record::{Record, TraceContext};
pub use store::{StateStore, StoreError};

use crate::contract::{EventStatus, Method, Money, Operation};
use serde::{Deserialize, Serialize};

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
        [
            State::Received,
            State::Submitting,
            State::Submitted,
            State::ActionRequired,
            State::Unknown,
            State::Succeeded,
            State::Declined,
            State::Failed,
            State::Rejected,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
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

/// What the record remembers of the command, so that a callback can be turned into a
/// full event without the command at hand.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
}

/// The recorded outcome: the provider's code and message, or payfleet's reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Data the customer must be sent with (redirect, 3-D Secure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<serde_json::Value>,
}
