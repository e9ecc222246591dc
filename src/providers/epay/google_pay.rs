//! Google Pay payment: the `PAYMENT_GATEWAY` token Google gave the merchant's page,
//! sent with the payer's fields to `POST {api}/payment/cryptopay`, under a token of the
//! long `payment` scope.

use super::Epay;
use super::amount::EpayAmount;
use super::token::Transaction;
use crate::contract::methods::GooglePay;
use crate::contract::methods::google_pay::CardInfo;
use crate::providers::{ProviderError, Submission};
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
        epay.transact(super::codes::SCOPE_PAYMENT, PATH, tx, body)
            .await
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
