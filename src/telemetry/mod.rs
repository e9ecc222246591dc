//! What the fleet shows of itself: logs, metrics, traces (exported over OTLP when
//! configured), and the ops endpoints, served (like the
//! gateway's callbacks) by an HTTP server with timeouts and a connection cap.
//!
//! Following vector's rule, each thing that happens is one call in [`Metrics`] that
//! both records the metric and writes the log line ([`events`](self) holds them), with
//! label values from the enums in [`label`] only.

mod events;
pub mod label;
mod logging;
mod metrics;
mod ops;
mod otlp;
mod serve;
pub mod trace;

pub use label::Label;
pub use logging::init_logging;
pub use metrics::Metrics;
pub use ops::{Readiness, serve_ops};
pub use otlp::{continue_in, flush_traces};
pub use serve::{Limits, Served, bind_and_serve};
