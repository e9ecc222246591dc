//! payfleet: a fleet of stateless workers that moves money.
//!
//! Other services publish payment commands onto RabbitMQ; workers validate them, guard
//! them with Redis, call the payment providers and publish every outcome as an event.
//!
//! Map of the crate:
//! - [`contract`]: the bus contract v1 (commands, events, `Amount`, `IdempotencyKey`).
//! - [`bus`]: RabbitMQ topology, confirmed publishing, consuming.
//! - [`state`]: the Redis state machine that keeps a payment from being paid twice.
//! - [`outcome`]: settling an outcome in its record and publishing its event, once.
//! - [`pipeline`]: the worker: consume → validate → claim → provider → record → publish → ack.
//! - [`providers`]: one trait, one folder per provider, one file per method; each
//!   proves and reads its own callbacks.
//! - [`ratelimit`]: fleet-wide request limits per provider account (Redis GCRA).
//! - [`gateway`]: provider callbacks over HTTP.
//! - [`reconciler`]: settles payments whose callback is late or lost.
//! - [`sandbox`]: the local provider simulator used by tests, the demo and benchmarks.
//! - [`bench`]: `payfleet bench`, throughput and costs of a real fleet against the broker.
//! - [`telemetry`]: logs, metrics, `/metrics` `/healthz` `/readyz`.
//! - [`app`]: assembling processes from [`config`]; [`local`]: a whole fleet in one
//!   process; [`cli`]: the `payfleet` commands.

pub mod app;
pub mod bench;
pub mod bus;
pub mod cli;
pub mod config;
pub mod contract;
pub mod gateway;
pub mod local;
pub mod outcome;
pub mod pipeline;
pub mod providers;
pub mod ratelimit;
pub mod reconciler;
pub mod sandbox;
pub mod state;
pub mod telemetry;
