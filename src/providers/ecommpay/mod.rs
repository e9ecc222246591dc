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
use std::collections::BTreeMap;
use std::time::Duration;

pub struct Ecommpay {
    gate: Gate,
    /// Further projects (`ecommpay.accounts`), by account name.
    accounts: BTreeMap<String, Gate>,
}

impl Ecommpay {
    pub fn new(gate: Gate) -> Self {
        Ecommpay {
            gate,
            accounts: BTreeMap::new(),
        }
    }

    /// Adds the further projects a command may name with `"account"`.
    pub fn with_accounts(mut self, accounts: BTreeMap<String, Gate>) -> Self {
        self.accounts = accounts;
        self
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    fn gate_for(&self, account: Option<&str>) -> Result<&Gate, ProviderError> {
        match account {
            None => Ok(&self.gate),
            Some(name) => self
                .accounts
                .get(name)
                .ok_or_else(|| ProviderError::Refused {
                    code: "account".into(),
                    message: format!("no ECommPay account {name:?} is configured"),
                }),
        }
    }
}

/// The `operation.type` ECommPay reports for an operation.
fn operation_type(operation: Operation) -> &'static str {
    match operation {
        Operation::Payout => "payout",
    }
}

/// Gate answers a status request no earlier than 10 s after the payment request.
const STATUS_NOT_BEFORE: Duration = Duration::from_secs(10);

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
            let gate = self.gate_for(command.account.as_deref())?;
            match &command.details {
                Details::HomebankPayout(p) => p.submit(gate, &payment_id, command.amount).await?,
            }
            Ok(Submission::Accepted)
        })
    }

    /// Without the command, the account is not known: the default project is asked
    /// first, then the others until one knows the payment (payment ids are unique).
    fn status<'a>(
        &'a self,
        payment_id: &'a str,
        _method: Method,
        operation: Operation,
    ) -> BoxFuture<'a, Result<Status, ProviderError>> {
        Box::pin(async move {
            let op = operation_type(operation);
            let mut answer = status::query(&self.gate, payment_id, op).await?;
            for gate in self.accounts.values() {
                if answer != Status::NotFound {
                    break;
                }
                answer = status::query(gate, payment_id, op).await?;
            }
            Ok(answer)
        })
    }

    fn has_account(&self, account: Option<&str>) -> bool {
        self.gate_for(account).is_ok()
    }

    fn status_of<'a>(
        &'a self,
        command: &'a Command,
        payment_id: &'a str,
    ) -> BoxFuture<'a, Result<Status, ProviderError>> {
        Box::pin(async move {
            let gate = self.gate_for(command.account.as_deref())?;
            status::query(gate, payment_id, operation_type(command.operation)).await
        })
    }

    fn timing(&self, method: Method, _operation: Operation) -> Timing {
        match method {
            // The document gives no basic time; the customer has 24 hours to cash out.
            Method::Homebank => Timing {
                basic: Duration::from_secs(15 * 60),
                threshold: Duration::from_secs(25 * 3600),
                status_not_before: STATUS_NOT_BEFORE,
            },
        }
    }
}
