//! The worker pipeline: consume → validate → claim (Redis) → provider → record →
//! publish the event (confirmed) → ack.

mod breaker;
mod decide;
mod handle;
mod handled;
mod lease;
mod outage;
mod park;
mod process;
mod record;
mod refund;
mod step;
mod worker;

pub use handle::{Handler, Incoming, Labels};
pub use handled::Handled;
pub use worker::Worker;
