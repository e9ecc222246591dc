//! `POST /oauth2/token`: client credentials, checked, for one transaction (or, without
//! `invoiceID`, for status requests).

use super::{Grant, count};
use crate::Sandbox;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use payfleet::providers::epay::{amount, codes};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const PATH: &str = payfleet::providers::epay::token::PATH;

fn oauth_error(
    sandbox: &Sandbox,
    status: StatusCode,
    error: &str,
    description: &str,
) -> (StatusCode, axum::Json<Value>) {
    count(sandbox, |s| s.epay_tokens_refused += 1);
    (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
}

pub async fn handle(
    State(sandbox): State<Arc<Sandbox>>,
    Form(form): Form<HashMap<String, String>>,
) -> (StatusCode, axum::Json<Value>) {
    count(&sandbox, |s| s.request(&format!("POST {PATH}")));
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return oauth_error(
            &sandbox,
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
        return oauth_error(
            &sandbox,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id or client_secret is wrong",
        );
    }
    if field("terminal") != sandbox.settings.epay_terminal_id {
        return oauth_error(
            &sandbox,
            StatusCode::BAD_REQUEST,
            "invalid_terminal",
            "terminal is unknown for this client",
        );
    }
    let scope = field("scope");
    if scope != codes::SCOPE_PAYMENT && scope != codes::SCOPE_TRANSFER {
        return oauth_error(
            &sandbox,
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "scope is not allowed",
        );
    }
    let invoice = field("invoiceID");
    let (invoice_id, amount_minor, currency) = if invoice.is_empty() {
        if scope == codes::SCOPE_TRANSFER {
            return oauth_error(
                &sandbox,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "invoiceID, amount and currency are required",
            );
        }
        (None, None, None)
    } else {
        if !(6..=15).contains(&invoice.len()) || !invoice.bytes().all(|b| b.is_ascii_digit()) {
            return oauth_error(
                &sandbox,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "invoiceID must be 6 to 15 digits",
            );
        }
        let currency = field("currency");
        let minor = serde_json::from_value(Value::from(currency))
            .ok()
            .and_then(|c| amount::parse_minor(field("amount"), c))
            .filter(|m| *m > 0);
        let Some(minor) = minor else {
            return oauth_error(
                &sandbox,
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
    sandbox.epay.lock().expect("epay lock").tokens.insert(
        access.clone(),
        Grant {
            scope: scope.to_owned(),
            invoice_id,
            amount_minor,
            currency,
            secret_hash: field("secret_hash").to_owned(),
            expires: Instant::now() + Duration::from_secs(ttl),
        },
    );
    count(&sandbox, |s| s.epay_tokens_issued += 1);
    // The documents show `expires_in` as a number; real answers also carry it as a
    // string: alternate, so both shapes are exercised.
    let expires_in = if access.as_bytes()[0].is_multiple_of(2) {
        json!(ttl)
    } else {
        json!(ttl.to_string())
    };
    (
        StatusCode::OK,
        axum::Json(json!({
            "access_token": access,
            "expires_in": expires_in,
            "refresh_token": "",
            "scope": scope,
            "token_type": "Bearer",
        })),
    )
}
