//! How one delivery ended: the label of its metrics.

use crate::contract::EventStatus;
use crate::telemetry::label::{Finished, NoEvent};

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

    pub fn label(self) -> Finished {
        let no_event = Finished::NoEvent;
        match self {
            Handled::Event(s) => Finished::Event(s),
            Handled::Retrying => no_event(NoEvent::Retrying),
            Handled::Duplicate => no_event(NoEvent::Duplicate),
            Handled::DeadLettered => no_event(NoEvent::DeadLettered),
            Handled::Fenced => no_event(NoEvent::Fenced),
            Handled::Unresolved => no_event(NoEvent::Unresolved),
            Handled::Awaiting => no_event(NoEvent::Awaiting),
            Handled::RecordLost => no_event(NoEvent::RecordLost),
            Handled::Deferred => Finished::Event(EventStatus::Deferred),
        }
    }
}
