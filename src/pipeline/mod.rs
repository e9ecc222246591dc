//! The worker pipeline: consume → validate → claim (Redis) → provider → record →
//! publish the event (confirmed) → ack.

pub mod announce;
mod handle;
mod worker;

pub use handle::{Handled, Handler, Incoming, Labels};
pub use worker::{Worker, WorkerHandle};

use crate::contract::{Command, ProviderName};
use crate::providers::Provider;
use crate::providers::ecommpay::Ecommpay;
use std::sync::Arc;

/// The provider clients a worker calls, one per provider.
#[derive(Clone)]
pub struct Providers {
    pub ecommpay: Arc<Ecommpay>,
}

impl Providers {
    pub fn get(&self, command: &Command) -> &dyn Provider {
        match command.provider() {
            ProviderName::Ecommpay => self.ecommpay.as_ref(),
        }
    }
}
