//! What the fleet shows of itself: logs, metrics, and the ops endpoints.
//!
//! Following vector's rule, each thing that happens is one call in [`Metrics`] that
//! both records the metric and writes the log line ([`events`](self) holds them), with
//! label values from the enums in [`label`] only.

mod events;
pub mod label;
mod logging;
mod metrics;
mod ops;
pub mod trace;

pub use label::Label;
pub use logging::init_logging;
pub use metrics::Metrics;
pub use ops::{Readiness, ops_router, serve_on, serve_ops};
