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
mod conn;
mod events;
mod holds;
mod index;
mod list;
mod lua;
mod reach;
mod record;
mod refunds;
mod store;

pub use changes::{Claim, ClaimMode, Lease, RejectVerdict, Settle, Transition};
pub use conn::{RedisConn, Scan};
pub use events::EventState;
pub use holds::HoldBoard;
pub use lua::{Lua, LuaCall};
pub use record::{Record, TraceContext};
pub use refunds::RefundOwner;
pub use store::{StateStore, StoreError};

pub use crate::contract::State;
use crate::contract::{Method, Money, Operation};
use serde::{Deserialize, Serialize};

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
    /// The provider account the command is sent in (`default` when it names none): the
    /// reconciler asks there, within its limits. `None` in records written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
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
