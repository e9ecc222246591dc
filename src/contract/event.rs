//! Event contract v1: what payfleet publishes onto `payfleet.events` as
//! `payment.<status>`.

use super::{IdempotencyKey, Method, Money, Operation};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    Accepted,
    ActionRequired,
    Deferred,
    Succeeded,
    Declined,
    Failed,
    Rejected,
}

impl EventStatus {
    pub const ALL: [EventStatus; 7] = [
        EventStatus::Accepted,
        EventStatus::ActionRequired,
        EventStatus::Deferred,
        EventStatus::Succeeded,
        EventStatus::Declined,
        EventStatus::Failed,
        EventStatus::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Accepted => "accepted",
            EventStatus::ActionRequired => "action_required",
            EventStatus::Deferred => "deferred",
            EventStatus::Succeeded => "succeeded",
            EventStatus::Declined => "declined",
            EventStatus::Failed => "failed",
            EventStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            EventStatus::Succeeded
                | EventStatus::Declined
                | EventStatus::Failed
                | EventStatus::Rejected
        )
    }

    pub fn routing_key(self) -> String {
        format!("payment.{}", self.as_str())
    }
}

/// The provider's own words about the outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderResult {
    pub code: String,
    pub message: String,
}

/// What payfleet says about a command: published as `payment.<status>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The contract version.
    #[schemars(extend("const" = super::command::CONTRACT_VERSION))]
    pub version: u32,
    /// Stable for one key and status: a consumer drops the duplicates that
    /// at-least-once delivery brings by this id.
    pub event_id: Uuid,
    pub idempotency_key: IdempotencyKey,
    pub status: EventStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    /// The id the provider knows this payment by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderResult>,
    /// Why payfleet rejected or gave up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the customer must be sent to (redirect or 3-D Secure), for `action_required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<serde_json::Value>,
    /// When a `deferred` command will be sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_until: Option<DateTime<Utc>>,
    pub occurred_at: DateTime<Utc>,
}

/// Namespace for event ids (UUIDv5), fixed forever so ids stay stable across versions.
const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x5a1f_1ee7_0000_4000_8000_7061_7966_6c74);

impl Event {
    pub fn new(key: IdempotencyKey, status: EventStatus) -> Self {
        Event {
            version: super::command::CONTRACT_VERSION,
            event_id: Self::id_for(&key, status),
            idempotency_key: key,
            status,
            method: None,
            operation: None,
            amount: None,
            payment_id: None,
            provider: None,
            reason: None,
            action: None,
            deferred_until: None,
            occurred_at: Utc::now(),
        }
    }

    pub fn id_for(key: &IdempotencyKey, status: EventStatus) -> Uuid {
        let name = format!("{}\n{}", key.as_str(), status.as_str());
        Uuid::new_v5(&EVENT_NAMESPACE, name.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_stable_per_key_and_status() {
        let k = IdempotencyKey::parse("k-1").unwrap();
        let a = Event::new(k.clone(), EventStatus::Succeeded);
        let b = Event::new(k.clone(), EventStatus::Succeeded);
        let c = Event::new(k, EventStatus::Accepted);
        assert_eq!(a.event_id, b.event_id);
        assert_ne!(a.event_id, c.event_id);
    }

    #[test]
    fn events_round_trip() {
        let mut e = Event::new(IdempotencyKey::parse("k").unwrap(), EventStatus::Declined);
        e.provider = Some(ProviderResult {
            code: "20602".into(),
            message: "Time-out".into(),
        });
        let json = serde_json::to_string(&e).unwrap();
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
    }
}
