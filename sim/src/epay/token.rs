//! `POST /oauth2/token` (form data): `grant_type` "client_credentials", `scope`,
//! `client_id`, `client_secret`, `terminal`, and for a transaction `invoiceID` ("from 6
//! to 15 digits"), `amount`, `currency`, plus the `secret_hash` echoed in postLinks.
//! The Google Pay document spells the field `InvoiceID`, the P2P one `invoiceID`: both
//! are read. `expires_in` "arrives as a number or a string" (ARCHITECTURE.md): the
//! answers alternate.

use super::answer::{SCOPE_PAYMENT, SCOPE_TRANSFER};
use super::book::Grant;
use crate::faults::roll;
use crate::{Sandbox, money};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use secrecy::ExposeSecret;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const PATH: &str = "/oauth2/token";

fn oauth_error(sandbox: &Sandbox, status: StatusCode, error: &str, description: &str) -> Response {
    sandbox.with_stats(|s| s.epay_tokens_refused += 1);
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// An invoiceID: 6 to 15 digits.
pub fn is_invoice_id(s: &str) -> bool {
    (6..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

static ISSUED: AtomicU64 = AtomicU64::new(0);

pub async fn handle(
    State(sandbox): State<Arc<Sandbox>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    sandbox.with_stats(|s| s.request(&format!("POST {PATH}")));
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let refuse = |status, error, description| oauth_error(&sandbox, status, error, description);
    if field("grant_type") != "client_credentials" {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    let secret_ok = {
        use subtle::ConstantTimeEq;
        let want = sandbox.epay_client_secret.expose_secret().as_bytes();
        let got = field("client_secret").as_bytes();
        want.len() == got.len() && bool::from(want.ct_eq(got))
    };
    if field("client_id") != sandbox.settings.epay_client_id || !secret_ok {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id or client_secret is wrong",
        );
    }
    let scope = field("scope");
    if scope != SCOPE_PAYMENT && scope != SCOPE_TRANSFER {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "scope is not allowed",
        );
    }
    let invoice = Some(field("invoiceID"))
        .filter(|s| !s.is_empty())
        .unwrap_or(field("InvoiceID"));
    let (invoice_id, amount_minor, currency) = if invoice.is_empty() {
        if scope == SCOPE_TRANSFER {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "invoiceID, amount and currency are required",
            );
        }
        (None, None, None)
    } else {
        if !is_invoice_id(invoice) {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "invoiceID must be 6 to 15 digits",
            );
        }
        let currency = field("currency");
        let Some(minor) = money::epay_minor(field("amount"), currency).filter(|m| *m > 0) else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "amount and currency are required",
            );
        };
        (
            Some(invoice.to_owned()),
            Some(minor),
            Some(currency.to_owned()),
        )
    };
    let ttl = sandbox.settings.epay_token_ttl_s;
    let access = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    let single_use = roll(sandbox.answers().epay_token_single_use_rate);
    let grant = Grant {
        scope: scope.to_owned(),
        invoice_id,
        amount_minor,
        currency,
        terminal: Some(field("terminal"))
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        secret_hash: field("secret_hash").to_owned(),
        expires: Instant::now() + Duration::from_secs(ttl),
        single_use,
        used: false,
    };
    sandbox
        .epay
        .lock()
        .expect("epay lock")
        .tokens
        .insert(access.clone(), grant);
    sandbox.with_stats(|s| s.epay_tokens_issued += 1);
    let n = ISSUED.fetch_add(1, Ordering::Relaxed);
    let expires_in = if n.is_multiple_of(2) {
        json!(ttl)
    } else {
        json!(ttl.to_string())
    };
    Json(json!({
        "access_token": access,
        "expires_in": expires_in,
        "refresh_token": "",
        "scope": scope,
        "token_type": "Bearer",
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoice_ids_are_6_to_15_digits() {
        assert!(is_invoice_id("123456"));
        assert!(is_invoice_id("123456789012345"));
        assert!(!is_invoice_id("12345"));
        assert!(!is_invoice_id("1234567890123456"));
        assert!(!is_invoice_id("12345a"));
    }
}
