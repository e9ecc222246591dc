//! The command's `details` for an epay Google Pay payment.

use crate::contract::Money;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The command's `details` for a Google Pay payment.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GooglePay {
    /// The payer's name.
    #[schemars(pattern(r"\S"))]
    pub name: String,
    #[schemars(pattern(r"\S"))]
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

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PaymentData {
    pub api_version: u32,
    pub api_version_minor: u32,
    pub payment_method_data: PaymentMethodData,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PaymentMethodData {
    #[serde(default)]
    pub description: String,
    pub tokenization_data: TokenizationData,
    #[serde(rename = "type")]
    #[schemars(extend("const" = "CARD"))]
    pub kind: String,
    pub info: CardInfo,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenizationData {
    #[serde(rename = "type")]
    #[schemars(extend("const" = "PAYMENT_GATEWAY"))]
    pub kind: String,
    /// Card data: Google's encrypted payment data, as the Google Pay API gave it.
    /// Never logged, stored or published.
    #[schemars(with = "String", length(min = 1))]
    pub token: SecretString,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CardInfo {
    pub card_network: String,
    /// The last four digits.
    pub card_details: String,
}

impl GooglePay {
    pub fn parse(details: serde_json::Value, amount: Money) -> Result<Self, String> {
        let gp: GooglePay = super::epay::parse_details(details, amount)?;
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
}
