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
        let token = super::token::fetch(
            &epay.api,
            &epay.metrics,
            super::codes::SCOPE_TRANSFER,
            Some(tx),
        )
        .await?;
        let answer = match epay
            .api
            .post_json_unfollowed(PATH, &token.access, body)
            .await?
        {
            Ok(answer) => super::answer::read(answer, &epay.api.settings.term_url)?,
            Err(location) => redirected(&location)?,
        };
        match answer {
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

/// The document's answer: a redirect to the payform's success page (amount, currency,
/// invoiceID, …) or its error page (invoiceID, code, message), read from the Location's
/// query without fetching the page.
fn redirected(location: &str) -> Result<Submission, ProviderError> {
    let url = reqwest::Url::parse(location).map_err(|_| {
        ProviderError::Unknown(format!(
            "epay redirected to a URL it cannot read: {location}"
        ))
    })?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    match (param("code"), param("invoiceID")) {
        (Some(code), _) => Err(ProviderError::Refused {
            code,
            message: param("message").unwrap_or_default(),
        }),
        (None, Some(_)) => Ok(Submission::Accepted),
        (None, None) => Err(ProviderError::Unknown(format!(
            "epay redirected to a page that names no invoice: {}",
            url.path()
        ))),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The P2P document's two redirects, read without following them.
    #[test]
    fn the_confirmation_redirect_is_read_from_its_location() {
        let success = "https://epay.homebank.kz/payform/success.html?amount=100.00&currency=KZT\
            &invoiceID=100000000001&accountID=&description=x&reference=000000010000&language=rus&cardid=";
        assert_eq!(redirected(success), Ok(Submission::Accepted));
        let error = "https://epay.homebank.kz/payform/?invoiceID=100000000001&code=456&message=3DS%20failed";
        assert_eq!(
            redirected(error),
            Err(ProviderError::Refused {
                code: "456".into(),
                message: "3DS failed".into()
            })
        );
        assert!(
            redirected("https://epay.homebank.kz/payform/")
                .unwrap_err()
                .may_have_reached_provider()
        );
    }
}
