//! payfleet: a fleet of stateless workers that moves money.
//!
//! Other services publish payment commands onto RabbitMQ; workers validate them, guard
//! them with Redis, call the payment providers and publish every outcome as an event.
//!
//! Map of the crate, by floor: a module imports only modules on floors below its own,
//! so data flows one way (bus → pipeline → provider → outcome → bus) and no two modules
//! import each other.
//!
//! 1. [`contract`]: the bus contract v1 (commands and each method's fields, events,
//!    `Money`, `IdempotencyKey`, payment states, the card-data policy); imports nothing.
//! 2. [`config`]: layered settings, secrets from the environment.
//! 3. [`telemetry`]: logs and metrics (one call per thing that happens, labels from
//!    enums), `/metrics` `/healthz` `/readyz`, the HTTP server every listener runs
//!    (timeouts, connection cap), W3C trace context.
//! 4. [`state`]: the Redis state machine that keeps a payment from being paid twice; it
//!    returns typed records, and no Redis field name leaves it.
//! 5. [`ratelimit`]: fleet-wide request limits per provider account (Redis GCRA);
//!    [`bus`]: RabbitMQ topology, confirmed publishing, consuming, the delay ladder and
//!    every AMQP header.
//! 6. [`providers`]: one trait, one folder per provider, one file per method; each
//!    proves and reads its own callbacks into one verdict type.
//!    [`outcome`]: settling an outcome in its record and publishing its event, once;
//!    republishing what was recorded but not confirmed; the shared silence rules.
//! 7. [`pipeline`]: the worker: a pure decision ([`pipeline`]'s `decide`) and the I/O
//!    shell around it; [`gateway`]: one handler for every provider's callbacks;
//!    [`reconciler`]: settles payments whose callback is late or lost;
//!    [`ops`]: what operators see and do (payments, the dead-letter queue).
//! 8. [`app`]: assembling processes from settings; [`cli`]: the `payfleet` commands.
//!
//! The provider simulator (`sim/`) and the tools (`tools/`: demo, bench, chaos, the
//! in-process fleet) are crates of their own; this one links neither.

pub mod app;
pub mod bus;
pub mod cli;
pub mod config;
pub mod contract;
pub mod gateway;
pub mod ops;
pub mod outcome;
pub mod pipeline;
pub mod providers;
pub mod ratelimit;
pub mod reconciler;
pub mod state;
pub mod telemetry;
