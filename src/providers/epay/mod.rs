//! Halyk epay: a fresh OAuth2 token for every transaction, invoice ids allocated in
//! Redis, Google Pay payments and P2P card transfers (3-D Secure included), outcomes by
//! postLink confirmed with check-status.

pub mod amount;
pub mod answer;
pub mod api;
pub mod check_status;
pub mod codes;
pub mod confirm_3ds;
pub mod google_pay;
pub mod invoice;
pub mod p2p_transfer;
pub mod postlink;
pub mod token;

use crate::contract::{Command, Details, IdempotencyKey, Method, Operation};
use crate::providers::{CallbackVerdict, Provider, ProviderError, Status, Submission, Timing};
use crate::state::StateStore;
use crate::telemetry::Metrics;
use api::Api;
use futures::future::BoxFuture;
use invoice::Invoices;
use std::sync::Arc;
use std::time::Duration;

pub struct Epay {
    pub api: Api,
    pub invoices: Invoices,
    pub metrics: Arc<Metrics>,
}

impl Epay {
    pub fn new(api: Api, invoices: Invoices, metrics: Arc<Metrics>) -> Self {
        Epay {
            api,
            invoices,
            metrics,
        }
    }

    /// Gets the transaction's token, sends its request, reads the answer.
    async fn transact(
        &self,
        scope: &str,
        path: &str,
        tx: token::Transaction<'_>,
        body: Vec<u8>,
    ) -> Result<Submission, ProviderError> {
        let token = token::fetch(&self.api, &self.metrics, scope, Some(tx)).await?;
        let answer = self.api.post_json(path, &token.access, body).await?;
        answer::read(answer, &self.api.settings.term_url)
    }

    async fn allocation(
        &self,
        command: &Command,
        carried: Option<&str>,
    ) -> Result<invoice::Allocation, ProviderError> {
        self.invoices
            .allocate(command.key.as_str(), carried)
            .await
            .map_err(|e| ProviderError::NotSent(format!("allocating the invoice id: {e}")))
    }
}

impl Provider for Epay {
    /// The invoice id allocated in Redis for the key (or, for a 3-D Secure
    /// confirmation, the transfer's own).
    fn payment_id<'a>(
        &'a self,
        command: &'a Command,
        carried: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            match &command.details {
                Details::EpayConfirm3ds(c) => Ok(c.invoice_id.clone()),
                _ => Ok(self.allocation(command, carried).await?.invoice_id),
            }
        })
    }

    /// The invoice id, sealed for the key (see [`invoice::Invoices::carry`]); a 3-D
    /// Secure confirmation's id is in its command.
    fn carry(&self, command: &Command, payment_id: &str) -> Option<String> {
        match command.details {
            Details::EpayConfirm3ds(_) => None,
            _ => Some(self.invoices.carry(command.key.as_str(), payment_id)),
        }
    }

    /// Sent as `payment_id`, the invoice id allocated for it: its secret_hash is derived
    /// from it, so nothing is read from Redis here (Redis may have lost the allocation
    /// since).
    fn submit<'a>(
        &'a self,
        command: &'a Command,
        payment_id: &'a str,
    ) -> BoxFuture<'a, Result<Submission, ProviderError>> {
        Box::pin(async move {
            match &command.details {
                Details::EpayConfirm3ds(c) => c.submit(self, command.amount).await,
                details @ (Details::EpayGooglePay(_) | Details::EpayP2pTransfer(_)) => {
                    let secret_hash = self.invoices.secret_hash(payment_id);
                    let tx = token::Transaction {
                        invoice_id: payment_id,
                        amount: command.amount,
                        secret_hash: &secret_hash,
                    };
                    match details {
                        Details::EpayGooglePay(gp) => gp.submit(self, tx).await,
                        Details::EpayP2pTransfer(t) => t.submit(self, tx).await,
                        _ => unreachable!("matched above"),
                    }
                }
                Details::HomebankPayout(_)
                | Details::IndiaSale(_)
                | Details::IndiaPayout(_)
                | Details::IndiaRefund(_) => Err(ProviderError::Refused {
                    code: "routing".into(),
                    message: "not an epay command".into(),
                }),
            }
        })
    }

    fn status<'a>(
        &'a self,
        _key: &'a IdempotencyKey,
        payment_id: &'a str,
        _method: Method,
        operation: Operation,
    ) -> BoxFuture<'a, Result<Status, ProviderError>> {
        Box::pin(async move {
            let status = check_status::query(self, payment_id).await?;
            if operation != Operation::Confirm3ds {
                return Ok(status);
            }
            // A confirmation is done once its transfer left 3-D Secure; while the
            // transfer still waits, the confirmation has not been applied: send it.
            Ok(match status {
                Status::Pending | Status::NotFound | Status::ActionRequired(_) => Status::NotFound,
                Status::Final { state, outcome } => Status::Final { state, outcome },
            })
        })
    }

    /// check-status of an invoice id no transaction has: 15 digits, as payfleet's, but
    /// all nines, which its allocator's candidates (derived, 15 digits) could reach only
    /// by a one-in-10¹⁴ chance, and a status query harms none even then.
    fn probe<'a>(&'a self, _account: &'a str) -> BoxFuture<'a, Result<Status, ProviderError>> {
        Box::pin(check_status::query(self, "999999999999999"))
    }

    /// Every call asks for a token of its own first.
    fn requests_per_call(&self) -> u32 {
        2
    }

    fn timing(&self, _method: Method, operation: Operation) -> Timing {
        // 102 says "try again later", and the documents make an invoice's uniqueness
        // the merchant's duty, not a refusal epay promises: a resend under the same
        // invoice id while epay may still be taking the first request could pay twice.
        // Sent again only once 102 has held this long after the last request.
        const RESEND_AFTER: Duration = Duration::from_secs(2 * 60);
        match operation {
            // The customer has to pass 3-D Secure; epay answers status requests at once.
            // Its documents promise no outcome at any time: past the threshold an
            // unfinished payment is left for an operator, never declined.
            Operation::Transfer | Operation::Payment => Timing {
                basic: Duration::from_secs(60),
                threshold: Duration::from_secs(2 * 3600),
                declines_at_threshold: false,
                status_not_before: Duration::from_secs(1),
                // 102 "Invoice not found, try again later": no proof of anything.
                not_found_final: false,
                resend_after: RESEND_AFTER,
            },
            _ => Timing {
                basic: Duration::from_secs(30),
                threshold: Duration::from_secs(3600),
                declines_at_threshold: false,
                status_not_before: Duration::from_secs(1),
                // 102 "Invoice not found, try again later": no proof of anything.
                not_found_final: false,
                // A confirmation sent again confirms the same transaction, never a
                // second one.
                resend_after: Duration::ZERO,
            },
        }
    }

    fn callback<'a>(
        &'a self,
        body: &'a [u8],
        records: &'a StateStore,
    ) -> BoxFuture<'a, CallbackVerdict> {
        Box::pin(postlink::verdict(self, body, records))
    }
}
