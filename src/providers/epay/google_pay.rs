//! Google Pay payment: the `PAYMENT_GATEWAY` token Google gave the merchant's page,
//! sent with the payer's fields to `POST {api}/payment/cryptopay`, under a token of the
//! long `payment` scope.

use super::Epay;
use super::amount::EpayAmount;
use super::token::Transaction;
use crate::contract::Money;
use crate::providers::{ProviderError, Submission};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub const PATH: &str = "/payment/cryptopay";

/// The command's `details` for a Google Pay payment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GooglePay {
    /// The payer's name.
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub account_id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub back_link: Option<String>,
    #[serde(default)]
    pub failure_back_link: Option<String>,
    #[serde(default)]
    pub card_save: bool,
    /// Google's `PaymentData`, as the Google Pay API gave it to the page.
    pub google_pay: PaymentData,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PaymentData {
    pub api_version: u32,
    pub api_version_minor: u32,
    pub payment_method_data: PaymentMethodData,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PaymentMethodData {
    #[serde(default)]
    pub description: String,
    pub tokenization_data: TokenizationData,
    #[serde(rename = "type")]
    pub kind: String,
    pub info: CardInfo,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizationData {
    #[serde(rename = "type")]
    pub kind: String,
    /// Google's encrypted payment data: treated as card data.
    pub token: SecretString,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CardInfo {
    pub card_network: String,
    /// The last four digits.
    pub card_details: String,
}

impl GooglePay {
    pub fn parse(details: serde_json::Value, amount: Money) -> Result<Self, String> {
        let gp: GooglePay = super::parse_details(details, amount)?;
        if gp.name.trim().is_empty() || gp.description.trim().is_empty() {
            return Err("details.name and details.description are required".into());
        }
        let m = &gp.google_pay.payment_method_data;
        if m.tokenization_data.kind != "PAYMENT_GATEWAY" {
            return Err("details.google_pay tokenizationData.type must be PAYMENT_GATEWAY".into());
        }
        if m.tokenization_data.token.expose_secret().is_empty() {
            return Err("details.google_pay tokenizationData.token is required".into());
        }
        if m.kind != "CARD" {
            return Err("details.google_pay paymentMethodData.type must be CARD".into());
        }
        Ok(gp)
    }

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
