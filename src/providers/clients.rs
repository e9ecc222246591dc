//! The provider clients a process calls, one per provider.

use super::ecommpay::Ecommpay;
use super::epay::Epay;
use super::{Provider, Timing};
use crate::contract::{Command, Method, Operation, ProviderName};
use std::sync::Arc;

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
        self.named(method.provider())
    }

    pub fn named(&self, provider: ProviderName) -> &dyn Provider {
        match provider {
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
            ..t
        }
    }
}
