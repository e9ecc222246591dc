//! `POST {oauth}/oauth2/token`: a fresh OAuth2 client-credentials token for every
//! transaction, bound by epay to its invoice, amount, currency and terminal, and
//! carrying the transaction's `secret_hash` (echoed in its postLink).

use super::amount::EpayAmount;
use super::api::{Api, code_text};
use crate::contract::Money;
use crate::providers::ProviderError;
use crate::telemetry::Metrics;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::{Duration, Instant};

pub const PATH: &str = "/oauth2/token";

/// The transaction a token is for.
pub struct Transaction<'a> {
    pub invoice_id: &'a str,
    pub amount: Money,
    pub secret_hash: &'a SecretString,
}

pub struct Token {
    pub access: SecretString,
    pub expires_in: Duration,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token([REDACTED], expires in {:?})", self.expires_in)
    }
}

#[derive(Deserialize)]
struct Granted {
    access_token: SecretString,
    expires_in: Seconds,
}

/// `expires_in` arrives as a number or a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(u64),
    Text(String),
}

impl Seconds {
    fn get(&self) -> Option<u64> {
        match self {
            Seconds::Number(n) => Some(*n),
            Seconds::Text(s) => s.trim().parse().ok(),
        }
    }
}

/// Asks for a token. No payment has been sent yet, so every failure to get one is
/// `NotSent` (safe to retry as new) or, when epay refuses the credentials, terminal.
pub async fn fetch(
    api: &Api,
    metrics: &Metrics,
    scope: &str,
    transaction: Option<Transaction<'_>>,
) -> Result<Token, ProviderError> {
    let started = Instant::now();
    let result = request(api, scope, transaction).await;
    metrics.stage(
        crate::telemetry::label::Stage::Token,
        started.elapsed().as_secs_f64(),
    );
    result
}

/// The invoice's form field as each document spells it: `InvoiceID` for a payment
/// (Google Pay), `invoiceID` for a transfer (P2P); a provider may read them as written.
fn invoice_field(scope: &str) -> &'static str {
    if scope == super::codes::SCOPE_TRANSFER {
        "invoiceID"
    } else {
        "InvoiceID"
    }
}

async fn request(
    api: &Api,
    scope: &str,
    transaction: Option<Transaction<'_>>,
) -> Result<Token, ProviderError> {
    let s = &api.settings;
    let mut form: Vec<(&str, String)> = vec![
        ("grant_type", "client_credentials".into()),
        ("scope", scope.into()),
        ("client_id", s.client_id.clone()),
        (
            "client_secret",
            api.client_secret.expose_secret().to_owned(),
        ),
        ("terminal", s.terminal_id.clone()),
    ];
    if let Some(t) = &transaction {
        form.extend([
            (invoice_field(scope), t.invoice_id.to_owned()),
            ("amount", EpayAmount::of(t.amount).as_str().to_owned()),
            ("currency", t.amount.currency.code().to_owned()),
            ("secret_hash", t.secret_hash.expose_secret().to_owned()),
        ]);
    }
    let sent = api
        .http
        .post(Api::url(&s.oauth_url, PATH))
        .form(&form)
        .send()
        .await;
    let (status, body) = super::api::read(sent).await.map_err(|e| match e {
        // The payment itself was not sent: retry as new.
        ProviderError::Unknown(m) => ProviderError::NotSent(format!("token: {m}")),
        other => other,
    })?;
    if status >= 400 {
        // Bad credentials, terminal or fields: retrying cannot help.
        let code = body
            .get("error")
            .or_else(|| body.get("code"))
            .map(code_text)
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| status.to_string());
        let message = body
            .get("error_description")
            .or_else(|| body.get("message"))
            .and_then(|m| m.as_str())
            .unwrap_or("token refused");
        return Err(ProviderError::Refused {
            code: format!("token:{code}"),
            message: message.to_owned(),
        });
    }
    let granted: Granted = serde_json::from_value(body)
        .map_err(|_| ProviderError::NotSent("token: unexpected answer".into()))?;
    let expires_in = granted
        .expires_in
        .get()
        .filter(|s| *s > 0)
        .ok_or_else(|| ProviderError::NotSent("token: expires_in is not a number".into()))?;
    Ok(Token {
        access: granted.access_token,
        expires_in: Duration::from_secs(expires_in),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invoice_field_is_spelt_as_each_document_spells_it() {
        assert_eq!(
            invoice_field(super::super::codes::SCOPE_PAYMENT),
            "InvoiceID"
        );
        assert_eq!(
            invoice_field(super::super::codes::SCOPE_TRANSFER),
            "invoiceID"
        );
    }

    #[test]
    fn expires_in_as_number_or_string() {
        for body in [
            r#"{"access_token":"a","expires_in":7200,"token_type":"Bearer"}"#,
            r#"{"access_token":"a","expires_in":"7200","scope":"transfer"}"#,
        ] {
            let g: Granted = serde_json::from_str(body).unwrap();
            assert_eq!(g.expires_in.get(), Some(7200));
        }
        let g: Granted =
            serde_json::from_str(r#"{"access_token":"a","expires_in":"soon"}"#).unwrap();
        assert_eq!(g.expires_in.get(), None);
    }
}
