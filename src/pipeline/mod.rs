//! The worker pipeline: consume → validate → claim (Redis) → provider → record →
//! publish the event (confirmed) → ack.

mod handle;
mod throttle;
mod worker;

pub use handle::{Handled, Handler, Incoming, Labels};
pub use worker::{Worker, WorkerHandle};
