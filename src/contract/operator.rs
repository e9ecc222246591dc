//! What operators do, published onto `payfleet.events` as `operator.<action>` next to
//! the payment events (`payment.<status>`): consumers of payments bind `payment.#`,
//! auditors `operator.#`.

use super::IdempotencyKey;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorAction {
    /// A dead letter was put back on the commands exchange (`payfleet dead replay`).
    DeadReplayed,
}

impl OperatorAction {
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorAction::DeadReplayed => "dead_replayed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorEvent {
    pub version: u32,
    /// Unique per action taken.
    pub event_id: Uuid,
    pub action: OperatorAction,
    /// Who acted, as they named themselves (`--by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The command acted on, when its body names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
    /// The dead letter acted on (`payfleet dead list`'s id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_id: Option<String>,
    /// What was done and why, in words.
    pub detail: String,
    pub occurred_at: DateTime<Utc>,
}

impl OperatorEvent {
    pub fn new(action: OperatorAction, detail: String) -> Self {
        OperatorEvent {
            version: super::command::CONTRACT_VERSION,
            event_id: Uuid::new_v4(),
            action,
            by: None,
            idempotency_key: None,
            dead_letter_id: None,
            detail,
            occurred_at: Utc::now(),
        }
    }

    pub fn routing_key(&self) -> String {
        format!("operator.{}", self.action.as_str())
    }
}
