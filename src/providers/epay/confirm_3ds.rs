//! Completing a 3-D Secure transfer: `POST {api}/payment/confirm` with the transaction
//! `ID`, the bank's `PaRes` and the `MD` from the `action_required` event. The
//! transfer's own outcome then arrives by postLink (confirmed by check-status).

use super::Epay;
use crate::contract::Money;
use crate::contract::methods::Confirm3ds;
use crate::providers::{ProviderError, Submission};
use crate::state::{Outcome, State};
use serde::Serialize;

pub const PATH: &str = "/payment/confirm";

impl Confirm3ds {
    pub async fn submit(&self, epay: &Epay, amount: Money) -> Result<Submission, ProviderError> {
        // The transaction's own secret_hash, so the postLink that follows is authentic.
        let Some((_, secret_hash)) = epay
            .invoices
            .find(&self.invoice_id)
            .await
            .map_err(|e| ProviderError::NotSent(format!("invoice lookup: {e}")))?
        else {
            return Err(ProviderError::Refused {
                code: "unknown_invoice".into(),
                message: "payfleet made no transfer with this invoice id".into(),
            });
        };
        let body = serde_json::to_vec(&Request {
            id: &self.id,
            pa_res: &self.pa_res,
            md: &self.md,
        })
        .expect("the request serialises");
        let tx = super::token::Transaction {
            invoice_id: &self.invoice_id,
            amount,
            secret_hash: &secret_hash,
        };
        match epay
            .transact(super::codes::SCOPE_TRANSFER, PATH, tx, body)
            .await?
        {
            // Confirmed: the 3-D Secure step is done; the transfer settles by postLink.
            Submission::Accepted | Submission::Final { .. } => Ok(Submission::Final {
                state: State::Succeeded,
                outcome: Outcome {
                    code: Some("0".into()),
                    message: Some("3-D Secure confirmed".into()),
                    ..Default::default()
                },
            }),
            Submission::ActionRequired(_) => Err(ProviderError::Unknown(
                "epay asked for 3-D Secure again on a confirmation".into(),
            )),
        }
    }
}

#[derive(Serialize)]
struct Request<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    #[serde(rename = "PaRes")]
    pa_res: &'a str,
    #[serde(rename = "MD")]
    md: &'a str,
}
