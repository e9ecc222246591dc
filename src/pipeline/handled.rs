//! How one delivery ended: the label of its metrics.

use crate::contract::EventStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Event(EventStatus),
    Retrying,
    Duplicate,
    DeadLettered,
    /// Another worker owns it now.
    Fenced,
    /// The outcome is unknown and retries are spent: the reconciler settles it.
    Unresolved,
    /// A copy of a payment that waits for the provider's result.
    Awaiting,
    /// Its record vanished mid-flight (Redis lost its data).
    RecordLost,
    /// Held in the delay queues until the provider's working hours.
    Deferred,
}

impl Handled {
    /// Whether the payment is still open, so its command should come back to check.
    pub(super) fn open(self) -> bool {
        matches!(
            self,
            Handled::Event(
                EventStatus::Accepted | EventStatus::ActionRequired | EventStatus::Deferred
            ) | Handled::Awaiting
                | Handled::Unresolved
                | Handled::RecordLost
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            Handled::Event(s) => s.as_str(),
            Handled::Retrying => "retrying",
            Handled::Duplicate => "duplicate",
            Handled::DeadLettered => "dead_lettered",
            Handled::Fenced => "fenced",
            Handled::Unresolved => "unresolved",
            Handled::Awaiting => "awaiting",
            Handled::RecordLost => "record_lost",
            Handled::Deferred => "deferred",
        }
    }
}
