//! ECommPay Gate: signed JSON requests, outcomes by signed callback.

pub mod callback;
pub mod codes;
mod gate;
pub mod homebank_payout;
pub mod signature;
pub mod status;

pub use gate::{Gate, GateAnswer};

use crate::contract::{Command, Details};
use crate::providers::{Provider, ProviderError, Status, Submission};
use futures::future::BoxFuture;

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

/// The `operation.type` ECommPay reports for a command.
fn operation_type(command: &Command) -> &'static str {
    match command.details {
        Details::HomebankPayout(_) => "payout",
    }
}

impl Provider for Ecommpay {
    /// The idempotency key itself: its charset is safe for Gate, and it can be rebuilt
    /// from the command alone, even if Redis lost everything.
    fn payment_id(&self, command: &Command) -> String {
        command.key.as_str().to_owned()
    }

    fn submit<'a>(
        &'a self,
        command: &'a Command,
    ) -> BoxFuture<'a, Result<Submission, ProviderError>> {
        Box::pin(async move {
            let payment_id = self.payment_id(command);
            match &command.details {
                Details::HomebankPayout(p) => {
                    p.submit(&self.gate, &payment_id, command.amount).await?
                }
            }
            Ok(Submission::Accepted)
        })
    }

    fn status<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Status, ProviderError>> {
        Box::pin(async move {
            status::query(
                &self.gate,
                &self.payment_id(command),
                operation_type(command),
            )
            .await
        })
    }
}
