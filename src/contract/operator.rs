//! Operator events: every operator action (`payfleet hold`, `release`, …) is published
//! onto `payfleet.events` as `operator.<action>`, so an audit trail needs nothing but a
//! queue bound to `operator.#`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperatorAction {
    /// A hold was set (or replaced) on a provider or account.
    HoldSet,
    /// A hold was lifted.
    HoldReleased,
    /// A dead letter was put back on the commands exchange (`payfleet dead replay`).
    DeadReplayed,
    /// A dead letter whose payment was already final, its event out, was taken out of
    /// the dead-letter queue by `payfleet dead replay`; nothing was sent.
    DeadRemoved,
    /// An operator settled a payment whose outcome the provider could not tell
    /// (`payfleet payments resolve`); the target is its idempotency key.
    PaymentResolved,
}

impl OperatorAction {
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorAction::HoldSet => "hold_set",
            OperatorAction::HoldReleased => "hold_released",
            OperatorAction::DeadReplayed => "dead_replayed",
            OperatorAction::DeadRemoved => "dead_removed",
            OperatorAction::PaymentResolved => "payment_resolved",
        }
    }
}

/// What an operator did, who, when and why. Free text comes from the operator or from
/// payfleet's own reasons (which never quote a command), so it carries no card data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OperatorEvent {
    /// The contract version.
    #[schemars(extend("const" = super::command::CONTRACT_VERSION))]
    pub version: u32,
    /// Unique per action.
    pub event_id: Uuid,
    pub action: OperatorAction,
    /// What it acted on: a hold target (`ecommpay/kz_main`), an idempotency key, …
    pub target: String,
    /// Who acted, as the operator named themselves (`--by`).
    pub by: String,
    /// Why, in the operator's words.
    pub reason: String,
    pub occurred_at: DateTime<Utc>,
}

impl OperatorEvent {
    pub fn new(action: OperatorAction, target: String, by: String, reason: String) -> Self {
        OperatorEvent {
            version: super::command::CONTRACT_VERSION,
            event_id: Uuid::new_v4(),
            action,
            target,
            by,
            reason,
            occurred_at: Utc::now(),
        }
    }

    pub fn routing_key(&self) -> String {
        format!("operator.{}", self.action.as_str())
    }
}
