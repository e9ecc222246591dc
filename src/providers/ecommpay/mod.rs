//! ECommPay Gate: signed JSON requests, outcomes by signed callback.

pub mod callback;
pub mod codes;
mod gate;
pub mod homebank_payout;
pub mod signature;
pub mod status;

pub use gate::{Gate, GateAnswer};

use crate::contract::{Command, Details, Method, Operation};
use crate::providers::{Provider, ProviderError, Status, Submission, Timing};
use futures::future::BoxFuture;
use std::time::Duration;

pub struct Ecommpay {
    gate: Gate,
}

impl Ecommpay {
    pub fn new(gate: Gate) -> Self {
        Ecommpay { gate }
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }
}

/// The `operation.type` ECommPay reports for an operation.
fn operation_type(operation: Operation) -> &'static str {
    match operation {
        Operation::Payout => "payout",
        // Never routed here (epay's operations).
        other => other.as_str(),
    }
}

/// Gate answers a status request no earlier than 10 s after the payment request.
const STATUS_NOT_BEFORE: Duration = Duration::from_secs(10);

impl Provider for Ecommpay {
    /// The idempotency key itself: its charset is safe for Gate, and it can be rebuilt
    /// from the command alone, even if Redis lost everything.
    fn payment_id<'a>(
        &'a self,
        command: &'a Command,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(std::future::ready(Ok(command.key.as_str().to_owned())))
    }

    fn submit<'a>(
        &'a self,
        command: &'a Command,
    ) -> BoxFuture<'a, Result<Submission, ProviderError>> {
        Box::pin(async move {
            let payment_id = command.key.as_str();
            match &command.details {
                Details::HomebankPayout(p) => {
                    p.submit(&self.gate, payment_id, command.amount).await?
                }
                // Routed by method: epay's commands never reach ECommPay.
                _ => {
                    return Err(ProviderError::Refused {
                        code: "routing".into(),
                        message: "not an ECommPay command".into(),
                    });
                }
            }
            Ok(Submission::Accepted)
        })
    }

    fn status<'a>(
        &'a self,
        payment_id: &'a str,
        _method: Method,
        operation: Operation,
    ) -> BoxFuture<'a, Result<Status, ProviderError>> {
        Box::pin(status::query(
            &self.gate,
            payment_id,
            operation_type(operation),
        ))
    }

    fn timing(&self, method: Method, _operation: Operation) -> Timing {
        match method {
            // The document gives no basic time; the customer has 24 hours to cash out.
            // Epay's methods are never routed here; they share HomeBank's timing arm.
            Method::Homebank | Method::GooglePay | Method::P2p => Timing {
                basic: Duration::from_secs(15 * 60),
                threshold: Duration::from_secs(25 * 3600),
                status_not_before: STATUS_NOT_BEFORE,
            },
        }
    }
}
