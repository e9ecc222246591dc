//! The provider clients a process calls, one per enabled provider.

use super::ecommpay::Ecommpay;
use super::epay::Epay;
use super::{Provider, Timing};
use crate::contract::{Command, Method, Operation, ProviderName};
use std::sync::Arc;

#[derive(Clone)]
pub struct Providers {
    /// `None`: the provider is not enabled (`<provider>.enabled = false`).
    pub ecommpay: Option<Arc<Ecommpay>>,
    pub epay: Option<Arc<Epay>>,
    /// `reconciler.time_scale`: shrinks every provider time in tests and demos.
    pub time_scale: f64,
}

impl Providers {
    pub fn get(&self, command: &Command) -> Option<&dyn Provider> {
        self.of(command.method)
    }

    pub fn of(&self, method: Method) -> Option<&dyn Provider> {
        self.named(method.provider())
    }

    pub fn named(&self, provider: ProviderName) -> Option<&dyn Provider> {
        match provider {
            ProviderName::Ecommpay => self.ecommpay.as_deref().map(|p| p as &dyn Provider),
            ProviderName::Epay => self.epay.as_deref().map(|p| p as &dyn Provider),
        }
    }

    /// The method's timing at `provider`, scaled.
    pub fn timing(&self, provider: &dyn Provider, method: Method, operation: Operation) -> Timing {
        let t = provider.timing(method, operation);
        let scale = |d: std::time::Duration| d.mul_f64(self.time_scale);
        Timing {
            basic: scale(t.basic),
            threshold: scale(t.threshold),
            status_not_before: scale(t.status_not_before),
            resend_after: scale(t.resend_after),
            ..t
        }
    }
}

/// Why a command or callback of `provider` cannot be served here.
pub fn not_enabled(provider: ProviderName) -> &'static str {
    match provider {
        ProviderName::Ecommpay => "ecommpay is not enabled here (ecommpay.enabled = false)",
        ProviderName::Epay => "epay is not enabled here (epay.enabled = false)",
    }
}
