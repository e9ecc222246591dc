//! payfleet: a fleet of stateless workers that moves money.
//!
//! Other services publish payment commands onto RabbitMQ; workers validate them, guard
//! them with Redis, call the payment providers and publish every outcome as an event.
//!
//! Map of the crate:
//! - [`contract`]: the bus contract v1 (commands and each method's fields, events,
//!   `Amount`, `IdempotencyKey`, payment states, the card-data policy); imports nothing.
//! - [`bus`]: RabbitMQ topology, confirmed publishing, consuming.
//! - [`state`]: the Redis state machine that keeps a payment from being paid twice.
//! - [`outcome`]: settling an outcome in its record and publishing its event, once.
//! - [`pipeline`]: the worker: consume → validate → claim → provider → record → publish → ack.
//! - [`providers`]: one trait, one folder per provider, one file per method; each
//!   proves and reads its own callbacks.
//! - [`ratelimit`]: fleet-wide request limits per provider account (Redis GCRA).
//! - [`gateway`]: provider callbacks over HTTP.
//! - [`reconciler`]: settles payments whose callback is late or lost.
//! - [`telemetry`]: logs, metrics, `/metrics` `/healthz` `/readyz`.
//! - [`app`]: assembling processes from [`config`]; [`cli`]: the `payfleet` commands.
//!
//! The provider simulator (`sim/`) and the tools (`tools/`: demo, bench, chaos, the
//! in-process fleet) are crates of their own; this one links neither.

pub mod app;
pub mod bus;
pub mod cli;
pub mod config;
pub mod contract;
pub mod gateway;
pub mod outcome;
pub mod pipeline;
pub mod providers;
pub mod ratelimit;
pub mod reconciler;
pub mod state;
pub mod telemetry;
