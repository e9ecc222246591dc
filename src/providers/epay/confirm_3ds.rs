//! Completing a 3-D Secure transfer: `POST {api}/payment/confirm` with the transaction
//! `ID`, the bank's `PaRes` and the `MD` from the `action_required` event. The
//! transfer's own outcome then arrives by postLink (confirmed by check-status).

use super::Epay;
use super::api::Unfollowed;
use crate::contract::Money;
use crate::contract::methods::Confirm3ds;
use crate::providers::{ProviderError, Submission};
use crate::state::{Outcome, State};
use serde::Serialize;

pub const PATH: &str = "/payment/confirm";

impl Confirm3ds {
    pub async fn submit(&self, epay: &Epay, amount: Money) -> Result<Submission, ProviderError> {
        // The transaction's own secret_hash, so the postLink that follows is authentic.
        // Derived from the invoice id, not looked up: a confirmation after Redis lost
        // its data still carries it. An invoice payfleet never made is epay's to refuse.
        let secret_hash = epay.invoices.secret_hash(&self.invoice_id);
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
        match epay
            .api
            .post_json_unfollowed(PATH, &token.access, body)
            .await?
        {
            Unfollowed::Json(answer) => {
                answered(super::answer::read(answer, &epay.api.settings.term_url)?)
            }
            // The document's success page: the 3-D Secure step is done.
            Unfollowed::Redirect(location) => redirected(&location).map(|_| confirmed()),
            // "Redirect Http code 200": the page itself, success or error. Not sent
            // again blindly: "already exists" makes the pipeline ask check-status.
            Unfollowed::Page(_) => Err(ProviderError::AlreadyExists),
        }
    }
}

/// Confirmed: the 3-D Secure step is done; the transfer settles by postLink.
fn confirmed() -> Submission {
    Submission::Final {
        state: State::Succeeded,
        outcome: Outcome {
            code: Some("0".into()),
            message: Some("3-D Secure confirmed".into()),
            ..Default::default()
        },
    }
}

/// A JSON answer: `code` 0 with the transaction `AUTH` or `CHARGE` is confirmed; any
/// other status (`FAILED`, `3D`, `NEW`, none) is no confirmation, and check-status says
/// what became of the transfer ("already exists" makes the pipeline ask it).
fn answered(answer: Submission) -> Result<Submission, ProviderError> {
    match answer {
        Submission::Final {
            state: State::Succeeded,
            ..
        } => Ok(confirmed()),
        Submission::Final { .. } | Submission::Accepted => Err(ProviderError::AlreadyExists),
        Submission::ActionRequired(_) => Err(ProviderError::Unknown(
            "epay asked for 3-D Secure again on a confirmation".into(),
        )),
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

    /// A JSON answer is a confirmation only with the transfer authorised: `code` 0 with
    /// `FAILED` (or no status) is no success, and check-status settles it.
    #[test]
    fn only_an_authorised_transfer_confirms_it() {
        let read = |body| super::super::answer::read((200, body), "t");
        let ok = serde_json::json!({"id": "x", "code": 0, "status": "AUTH"});
        assert_eq!(answered(read(ok).unwrap()), Ok(confirmed()));
        for status in ["FAILED", "3D", "NEW", ""] {
            let body = serde_json::json!({"id": "x", "code": 0, "status": status});
            assert_eq!(
                answered(read(body).unwrap()),
                Err(ProviderError::AlreadyExists),
                "{status}"
            );
        }
        let again = Submission::ActionRequired(Outcome::default());
        assert!(answered(again).unwrap_err().may_have_reached_provider());
    }

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
