//! The bus contract v1: commands in, events out, and the newtypes they are made of.

pub mod command;
pub mod event;
mod idempotency;
mod money;

pub use command::{
    Command, Decoded, Details, Fingerprint, Invalid, Method, Operation, ProviderName,
};
pub use event::{Event, EventStatus, ProviderResult};
pub use idempotency::IdempotencyKey;
pub use money::{Amount, Currency, Money};
