//! ECommPay Gate: signed JSON requests, outcomes by signed callback.

pub mod callback;
pub mod codes;
mod gate;
pub mod homebank_payout;
pub mod india;
pub mod india_banks;
pub mod india_hours;
pub mod india_payout;
pub mod india_refund;
pub mod india_sale;
pub mod signature;
pub mod status;

pub use gate::{Gate, GateAnswer};

use crate::contract::{Command, DEFAULT_ACCOUNT, Details, IdempotencyKey, Method, Operation};
use crate::providers::{CallbackVerdict, Provider, ProviderError, Status, Submission, Timing};
use crate::state::StateStore;
use futures::future::BoxFuture;
use india_banks::{BankList, Direction};
use india_hours::{Clock, OffsetClock};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub struct Ecommpay {
    gate: Gate,
    /// Judges the Banks of India payout hours.
    clock: Arc<dyn Clock>,
    banks: BankList,
    /// Further projects (`ecommpay.accounts`), by account name.
    accounts: BTreeMap<String, Gate>,
}

/// How long a fetched bank list is trusted unless configured otherwise.
const DEFAULT_BANK_LIST_TTL: Duration = Duration::from_secs(600);

impl Ecommpay {
    pub fn new(gate: Gate) -> Self {
        Ecommpay {
            gate,
            accounts: BTreeMap::new(),
            clock: Arc::new(OffsetClock::default()),
            banks: BankList::new(DEFAULT_BANK_LIST_TTL),
        }
    }

    /// Banks of India settings: the clock its payout hours are judged by and how long
    /// a bank list is kept.
    pub fn with_india(mut self, clock: Arc<dyn Clock>, bank_list_ttl: Duration) -> Self {
        self.clock = clock;
        self.banks = BankList::new(bank_list_ttl);
        self
    }

    pub fn banks(&self) -> &BankList {
        &self.banks
    }

    /// Adds the further projects a command may name with `"account"`.
    pub fn with_accounts(mut self, accounts: BTreeMap<String, Gate>) -> Self {
        self.accounts = accounts;
        self
    }

    /// Sends the command's payment request: Gate's acceptance is all it says.
    async fn send(&self, gate: &Gate, command: &Command) -> Result<Submission, ProviderError> {
        let payment_id = command.key.as_str();
        match &command.details {
            Details::HomebankPayout(p) => p.submit(gate, payment_id, command.amount).await?,
            Details::IndiaSale(s) => {
                let body = s.request(gate, payment_id, command.amount);
                gate.submit(india_sale::PATH, body).await?
            }
            Details::IndiaPayout(p) => {
                let body = p.request(gate, payment_id, command.amount);
                gate.submit(india_payout::PATH, body).await?
            }
            Details::IndiaRefund(r) => {
                let body = r.request(gate, &command.key, command.amount);
                gate.submit(india_refund::PATH, body).await?
            }
            // Routed by method: epay's commands never reach ECommPay.
            Details::EpayGooglePay(_)
            | Details::EpayP2pTransfer(_)
            | Details::EpayConfirm3ds(_) => {
                return Err(ProviderError::Refused {
                    code: "routing".into(),
                    message: "not an ECommPay command".into(),
                });
            }
        }
        Ok(Submission::Accepted)
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    fn gate_for(&self, account: Option<&str>) -> Result<&Gate, ProviderError> {
        match account {
            None | Some(DEFAULT_ACCOUNT) => Ok(&self.gate),
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

/// A refusal stands only if Gate does not have the payment: the documents give no code
/// for a payment id already used, so a resubmission after an attempt that may have
/// reached Gate can be refused for the payment Gate has. Only the status answer settles
/// that; when it cannot be had, the outcome is unknown.
fn confirm_refusal(refused: ProviderError, known: Result<Status, ProviderError>) -> ProviderError {
    match known {
        Ok(Status::NotFound) => refused,
        Ok(_) => ProviderError::AlreadyExists,
        Err(e) => ProviderError::Unknown(format!("{refused}; its status is unknown: {e}")),
    }
}

/// What one project knows of command `key`'s payment. Gate knows a refund by its
/// purchase's payment id, and an earlier refund of the purchase by another command
/// answers too: a refund is asked about by its own id (`merchant_refund_id`, the key).
async fn ask(
    gate: &Gate,
    key: &IdempotencyKey,
    payment_id: &str,
    operation: Operation,
) -> Result<Status, ProviderError> {
    match operation {
        Operation::Refund => status::query_refund(gate, payment_id, key.as_str()).await,
        op => status::query(gate, payment_id, operation_type(op)).await,
    }
}

/// The `operation.type` ECommPay reports for an operation.
fn operation_type(operation: Operation) -> &'static str {
    match operation {
        Operation::Payout => "payout",
        Operation::Sale => "sale",
        Operation::Refund => "refund",
        // Never routed here (epay's operations).
        other => other.as_str(),
    }
}

/// Gate answers a status request no earlier than 10 s after the payment request.
const STATUS_NOT_BEFORE: Duration = Duration::from_secs(10);

/// The idempotency key itself: its charset is safe for Gate, and it can be rebuilt
/// from the command alone, even if Redis lost everything. A refund is known by the
/// payment id of its purchase.
fn payment_id(command: &Command) -> String {
    match &command.details {
        Details::IndiaRefund(r) => r.payment_id.clone(),
        _ => command.key.as_str().to_owned(),
    }
}

impl Provider for Ecommpay {
    /// Rebuilt from the command alone: nothing carried is needed.
    fn payment_id<'a>(
        &'a self,
        command: &'a Command,
        _carried: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(std::future::ready(Ok(payment_id(command))))
    }

    /// The request names its ids as [`payment_id`] rebuilds them from the command.
    fn submit<'a>(
        &'a self,
        command: &'a Command,
        _payment_id: &'a str,
    ) -> BoxFuture<'a, Result<Submission, ProviderError>> {
        Box::pin(async move {
            let gate = self.gate_for(command.account.as_deref())?;
            match self.send(gate, command).await {
                // A refusal is believed only once the status says Gate never had the
                // payment: a resubmission after Redis lost its record is refused too, and
                // the money may have moved. A refund is asked about by its own id.
                Err(refused @ ProviderError::Refused { .. }) => {
                    let id = payment_id(command);
                    let known = ask(gate, &command.key, &id, command.operation).await;
                    Err(confirm_refusal(refused, known))
                }
                sent => sent,
            }
        })
    }

    /// Without the command, the account is not known: the default project is asked
    /// first, then the others until one knows the payment (payment ids are unique).
    fn status<'a>(
        &'a self,
        key: &'a IdempotencyKey,
        payment_id: &'a str,
        _method: Method,
        operation: Operation,
    ) -> BoxFuture<'a, Result<Status, ProviderError>> {
        Box::pin(async move {
            let mut answer = ask(&self.gate, key, payment_id, operation).await?;
            for gate in self.accounts.values() {
                if answer != Status::NotFound {
                    break;
                }
                answer = ask(gate, key, payment_id, operation).await?;
            }
            Ok(answer)
        })
    }

    fn has_account(&self, account: Option<&str>) -> bool {
        self.gate_for(account).is_ok()
    }

    fn status_in<'a>(
        &'a self,
        account: Option<&'a str>,
        key: &'a IdempotencyKey,
        payment_id: &'a str,
        method: Method,
        operation: Operation,
    ) -> BoxFuture<'a, Result<Status, ProviderError>> {
        // A record written before records named their account: any project may know it.
        let Some(name) = account else {
            return self.status(key, payment_id, method, operation);
        };
        Box::pin(async move {
            let gate = self.gate_for(Some(name))?;
            ask(gate, key, payment_id, operation).await
        })
    }

    fn status_of<'a>(
        &'a self,
        command: &'a Command,
        payment_id: &'a str,
    ) -> BoxFuture<'a, Result<Status, ProviderError>> {
        self.status_in(
            command.account.as_deref().or(Some(DEFAULT_ACCOUNT)),
            &command.key,
            payment_id,
            command.method,
            command.operation,
        )
    }

    /// Gate's status request for a payment id no command uses (payfleet's are the
    /// commands' keys or `banks-<uuid>`): Gate answers 3061 "not found" when it is up.
    fn probe<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<Status, ProviderError>> {
        Box::pin(async move {
            let gate = self.gate_for(Some(account))?;
            status::query(gate, "payfleet-breaker-probe", "payout").await
        })
    }

    fn timing(&self, method: Method, operation: Operation) -> Timing {
        match (method, operation) {
            // The document gives no basic time; the customer has 24 hours to cash out.
            // Epay's methods are never routed here; they share HomeBank's timing arm.
            (Method::Homebank | Method::GooglePay | Method::P2p, _) => Timing {
                basic: Duration::from_secs(15 * 60),
                threshold: Duration::from_secs(25 * 3600),
                declines_at_threshold: true,
                status_not_before: STATUS_NOT_BEFORE,
                not_found_final: true,
                resend_after: Duration::ZERO,
            },
            // The document: purchases within 5 minutes, declined by the provider after
            // 60.
            (Method::BanksOfIndia, Operation::Sale) => Timing {
                basic: Duration::from_secs(5 * 60),
                threshold: Duration::from_secs(60 * 60),
                declines_at_threshold: true,
                status_not_before: STATUS_NOT_BEFORE,
                not_found_final: true,
                resend_after: Duration::ZERO,
            },
            // No times documented for payouts and refunds: a week, well past any
            // weekend hold (the threshold counts from the last request, and a payout
            // held for working hours is taken afresh each time it comes back).
            (Method::BanksOfIndia, _) => Timing {
                basic: Duration::from_secs(15 * 60),
                threshold: Duration::from_secs(7 * 24 * 3600),
                declines_at_threshold: true,
                status_not_before: STATUS_NOT_BEFORE,
                not_found_final: true,
                resend_after: Duration::ZERO,
            },
        }
    }

    fn callback<'a>(
        &'a self,
        body: &'a [u8],
        _records: &'a StateStore,
    ) -> BoxFuture<'a, CallbackVerdict> {
        let secrets = std::iter::once(&self.gate).chain(self.accounts.values());
        Box::pin(std::future::ready(callback::verdict(
            body,
            secrets.map(Gate::secret),
        )))
    }

    fn check<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let (direction, bank_id) = match &command.details {
                Details::IndiaSale(s) => match s.bank_id {
                    Some(id) => (Direction::Sale, id),
                    None => return Ok(()),
                },
                Details::IndiaPayout(p) => (Direction::Payout, p.account.bank_id),
                _ => return Ok(()),
            };
            self.banks.check(&self.gate, direction, bank_id).await
        })
    }

    fn hold(&self, command: &Command) -> Option<Duration> {
        match command.details {
            Details::IndiaPayout(_) => india_hours::wait(self.clock.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resubmission Gate refuses (with a code the documents do not give) for a payment
    /// it already has is no decline: the status answer decides.
    #[test]
    fn a_refusal_stands_only_when_gate_does_not_have_the_payment() {
        let refused = || ProviderError::Refused {
            code: "3057".into(),
            message: "Payment with such payment_id already exists".into(),
        };
        assert_eq!(confirm_refusal(refused(), Ok(Status::NotFound)), refused());
        for known in [Status::Pending, Status::ActionRequired(Default::default())] {
            assert_eq!(
                confirm_refusal(refused(), Ok(known)),
                ProviderError::AlreadyExists
            );
        }
        let lost = ProviderError::Unknown("Gate answered HTTP 502".into());
        assert!(confirm_refusal(refused(), Err(lost)).may_have_reached_provider());
    }
}
