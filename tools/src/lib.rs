//! payfleet's tools: everything that drives a fleet rather than being one. None of it
//! ships in the production `payfleet` binary, which hands `payfleet demo|bench|chaos`
//! to the `payfleet-tools` binary built from this crate.
//!
//! Map of the crate:
//! - [`local`]: a whole fleet in one process (simulator, gateway, workers) in a
//!   namespace of its own: the demo, the benchmarks and the integration tests run on it.
//! - [`settings`]: a local fleet's settings, the core's and the simulator's together.
//! - [`bench`]: `payfleet bench`, throughput and costs of a real fleet against the broker.
//! - [`cli`]: the `demo`, `bench` and `chaos` commands, and the child-process fleet
//!   ([`cli::processes`]) that chaos and bench share.

pub mod bench;
pub mod cli;
pub mod local;
pub mod settings;
