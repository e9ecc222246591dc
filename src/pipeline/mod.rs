//! The worker pipeline: consume → validate → claim (Redis) → provider → record →
//! publish the event (confirmed) → ack.

pub mod announce;
mod decide;
mod handle;
mod handled;
mod lease;
mod park;
mod process;
mod record;
mod step;
mod worker;

pub use handle::{Handler, Incoming, Labels};
pub use handled::Handled;
pub use worker::{Worker, WorkerHandle};

use crate::contract::{Command, Method, Operation, ProviderName};
use crate::providers::ecommpay::Ecommpay;
use crate::providers::epay::Epay;
use crate::providers::{Provider, Timing};
use std::sync::Arc;

/// The provider clients a worker calls, one per provider.
#[derive(Clone)]
pub struct Providers {
    pub ecommpay: Arc<Ecommpay>,
    pub epay: Arc<Epay>,
    /// `reconciler.time_scale`: shrinks every provider time in tests and demos.
    pub time_scale: f64,
}

impl Providers {
    pub fn get(&self, command: &Command) -> &dyn Provider {
        self.of(command.method)
    }

    pub fn of(&self, method: Method) -> &dyn Provider {
        match method.provider() {
            ProviderName::Ecommpay => self.ecommpay.as_ref(),
            ProviderName::Epay => self.epay.as_ref(),
        }
    }

    /// The method's timing, scaled.
    pub fn timing(&self, method: Method, operation: Operation) -> Timing {
        let t = self.of(method).timing(method, operation);
        let scale = |d: std::time::Duration| d.mul_f64(self.time_scale);
        Timing {
            basic: scale(t.basic),
            threshold: scale(t.threshold),
            status_not_before: scale(t.status_not_before),
        }
    }
}
