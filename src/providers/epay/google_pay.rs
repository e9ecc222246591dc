//! Google Pay payment: the `PAYMENT_GATEWAY` token Google gave the merchant's page,
//! sent with the payer's fields to `POST {api}/payment/cryptopay`, under a token of the
//! long `payment` scope. The document says to process its answer "using the Payment
//! Status Check service": an answer that tells an outcome (a status, a decline) is
//! confirmed by check-status before it counts.

use super::Epay;
use super::amount::EpayAmount;
use super::token::Transaction;
use crate::contract::methods::GooglePay;
use crate::contract::methods::google_pay::CardInfo;
use crate::providers::{ProviderError, Status, Submission};
use secrecy::ExposeSecret;
use serde::Serialize;

pub const PATH: &str = "/payment/cryptopay";

impl GooglePay {
    pub async fn submit(
        &self,
        epay: &Epay,
        tx: Transaction<'_>,
    ) -> Result<Submission, ProviderError> {
        let (invoice_id, amount) = (tx.invoice_id, tx.amount);
        let s = &epay.api.settings;
        let m = &self.google_pay.payment_method_data;
        let body = Request {
            amount: EpayAmount::of(amount),
            currency: amount.currency.code(),
            name: &self.name,
            terminal_id: &s.terminal_id,
            invoice_id,
            description: &self.description,
            account_id: &self.account_id,
            email: self.email.as_deref().unwrap_or_default(),
            phone: self.phone.as_deref().unwrap_or_default(),
            back_link: self.back_link.as_deref().unwrap_or_default(),
            failure_back_link: self.failure_back_link.as_deref().unwrap_or_default(),
            post_link: &s.post_link_url,
            failure_post_link: &s.failure_post_link_url,
            card_save: self.card_save,
            use_bonus: false,
            payment_type: "googlePay",
            google_pay: GoogleBody {
                api_version_minor: self.google_pay.api_version_minor,
                api_version: self.google_pay.api_version,
                payment_method_data: MethodBody {
                    description: &m.description,
                    tokenization_data: TokenBody {
                        kind: &m.tokenization_data.kind,
                        token: m.tokenization_data.token.expose_secret(),
                    },
                    kind: &m.kind,
                    info: &m.info,
                },
            },
        };
        let body = serde_json::to_vec(&body).expect("the request serialises");
        // A refused token is no answer about the payment: it was never sent.
        let token = super::token::fetch(
            &epay.api,
            &epay.metrics,
            super::codes::SCOPE_PAYMENT,
            Some(tx),
        )
        .await?;
        let answer = epay.api.post_json(PATH, &token.access, body).await?;
        let answer = super::answer::read(answer, &s.term_url);
        match answer {
            Ok(Submission::Final { .. }) | Err(ProviderError::Refused { .. }) => {
                let known = super::check_status::query(epay, invoice_id).await;
                confirmed(answer, known)
            }
            other => other,
        }
    }
}

/// An outcome the answer told (`said`), as check-status (`known`) confirms it: its final
/// status settles it; a refusal stands only if epay does not have the payment; anything
/// else waits for the postLink or a later status query.
fn confirmed(
    said: Result<Submission, ProviderError>,
    known: Result<Status, ProviderError>,
) -> Result<Submission, ProviderError> {
    match (said, known) {
        (_, Ok(Status::Final { state, outcome })) => Ok(Submission::Final { state, outcome }),
        (Err(refused), Ok(Status::NotFound)) => Err(refused),
        (Err(refused), Err(e)) => Err(ProviderError::Unknown(format!(
            "{refused}; check-status could not confirm it: {e}"
        ))),
        (Err(_), Ok(Status::ActionRequired(_) | Status::Pending)) | (Ok(_), _) => {
            Ok(Submission::Accepted)
        }
    }
}

/// The document's request body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    amount: EpayAmount,
    currency: &'a str,
    name: &'a str,
    terminal_id: &'a str,
    invoice_id: &'a str,
    description: &'a str,
    account_id: &'a str,
    email: &'a str,
    phone: &'a str,
    back_link: &'a str,
    failure_back_link: &'a str,
    post_link: &'a str,
    failure_post_link: &'a str,
    card_save: bool,
    use_bonus: bool,
    payment_type: &'a str,
    google_pay: GoogleBody<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GoogleBody<'a> {
    api_version_minor: u32,
    api_version: u32,
    payment_method_data: MethodBody<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MethodBody<'a> {
    description: &'a str,
    tokenization_data: TokenBody<'a>,
    #[serde(rename = "type")]
    kind: &'a str,
    info: &'a CardInfo,
}

#[derive(Serialize)]
struct TokenBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    token: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Outcome, State};

    fn final_(state: State) -> Submission {
        Submission::Final {
            state,
            outcome: Outcome::default(),
        }
    }

    /// The answer's `status: AUTH` or a decline is no outcome until check-status says so.
    #[test]
    fn an_outcome_in_the_answer_waits_for_check_status() {
        let declined = || ProviderError::Refused {
            code: "454".into(),
            message: "Card is locked".into(),
        };
        let status = |state| {
            Ok(Status::Final {
                state,
                outcome: Outcome::default(),
            })
        };
        let auth = || Ok(final_(State::Succeeded));
        assert_eq!(
            confirmed(auth(), status(State::Succeeded)),
            Ok(final_(State::Succeeded))
        );
        assert_eq!(
            confirmed(auth(), Ok(Status::Pending)),
            Ok(Submission::Accepted)
        );
        assert_eq!(
            confirmed(auth(), Ok(Status::NotFound)),
            Ok(Submission::Accepted)
        );
        assert_eq!(
            confirmed(Err(declined()), status(State::Declined)),
            Ok(final_(State::Declined))
        );
        assert_eq!(
            confirmed(Err(declined()), Ok(Status::NotFound)),
            Err(declined())
        );
        assert_eq!(
            confirmed(Err(declined()), Ok(Status::Pending)),
            Ok(Submission::Accepted)
        );
        let unknown = confirmed(Err(declined()), Err(ProviderError::Unknown("502".into())));
        assert!(unknown.unwrap_err().may_have_reached_provider());
    }
}
