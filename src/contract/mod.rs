//! The bus contract v1: commands in, events out, and the newtypes they are made of.
//! The ground floor: it imports no other module of the crate.

mod account;
pub mod card;
pub mod command;
pub mod event;
mod fingerprint;
mod hex;
pub use hex::hex;
pub mod hold;
mod idempotency;
pub mod methods;
mod money;
mod names;
pub mod operator;
mod reason;
pub mod schema;
mod state;

pub use account::{ACCOUNT_PATTERN, DEFAULT_ACCOUNT, valid_account};
pub use card::FingerprintKey;
pub use command::{Command, Decoded, Details, Invalid};
pub use event::{Event, EventStatus, ProviderResult};
pub use fingerprint::Fingerprint;
pub use idempotency::IdempotencyKey;
pub use money::{Amount, Currency, Money};
pub use names::{Method, Operation, ProviderName};
pub use state::State;
