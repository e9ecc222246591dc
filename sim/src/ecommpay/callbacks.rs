//! Gate's outcome callbacks, signed at the root and sent to `ecommpay_callback_url`
//! with resends, and the configured callbacks that prove less than they claim
//! ([`crate::faults::Answers`]).

use super::book::Payment;
use super::report::{self, View};
use super::signature;
use crate::Sandbox;
use crate::callbacks::deliver_after;
use crate::faults::roll;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::sync::Arc;

/// Another currency than `c`, for a mismatched callback.
fn other_currency(c: &str) -> &'static str {
    if c == "USD" { "EUR" } else { "USD" }
}

/// `body` with another amount and currency everywhere it names them, signed again.
pub fn mismatched(secret: &[u8], body: &Value) -> Value {
    let mut forged = body.clone();
    for path in [
        "/payment/sum",
        "/operation/sum_initial",
        "/operation/sum_converted",
    ] {
        if let Some(sum) = forged.pointer_mut(path) {
            let amount = sum["amount"].as_u64().unwrap_or_default();
            let currency = other_currency(sum["currency"].as_str().unwrap_or_default());
            *sum = json!({ "amount": amount + 100, "currency": currency });
        }
    }
    signature::sign_root(secret, &mut forged);
    forged
}

/// `body` about a payment id nobody sent, signed.
pub fn unknown_payment(secret: &[u8], body: &Value) -> Value {
    let mut forged = body.clone();
    let id = format!("never-sent-{}", uuid::Uuid::new_v4().simple());
    forged["payment"]["id"] = json!(id);
    signature::sign_root(secret, &mut forged);
    forged
}

/// Adds `"redirect_data": {}` after signing: empty objects are outside the signature.
/// `false` when the body already carries redirect data.
pub fn add_empty_object(body: &mut Value) -> bool {
    match body.as_object_mut() {
        Some(map) if !map.contains_key("redirect_data") => {
            map.insert("redirect_data".to_owned(), json!({}));
            true
        }
        _ => false,
    }
}

/// Sends the callback about `p`'s latest operation.
pub fn call_back(sandbox: &Arc<Sandbox>, p: &Payment) {
    let answers = sandbox.answers();
    let secret = sandbox.ecommpay_secret.expose_secret().as_bytes().to_vec();
    let url = sandbox.settings.ecommpay_callback_url.clone();
    let mut body = report::body(sandbox, p, View::Callback);
    let mut extra_ms = 0;
    if roll(answers.ecommpay_callback_mismatch_rate) {
        sandbox.with_stats(|s| s.fault("callback_mismatch"));
        deliver_after(sandbox.clone(), url.clone(), mismatched(&secret, &body), 0);
        // The authentic one comes after the forged one.
        extra_ms = 100;
    }
    if roll(answers.ecommpay_callback_unknown_payment_rate) {
        sandbox.with_stats(|s| s.fault("callback_unknown_payment"));
        deliver_after(
            sandbox.clone(),
            url.clone(),
            unknown_payment(&secret, &body),
            0,
        );
    }
    if roll(answers.ecommpay_callback_empty_object_rate) && add_empty_object(&mut body) {
        sandbox.with_stats(|s| s.fault("callback_empty_object"));
    }
    deliver_after(sandbox.clone(), url, body, extra_ms);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed() -> Value {
        let mut body = json!({
            "project_id": 198,
            "payment": {"id": "p1", "status": "success", "sum": {"amount": 200000, "currency": "KZT"}},
            "operation": {"sum_initial": {"amount": 200000, "currency": "KZT"},
                          "sum_converted": {"amount": 200000, "currency": "KZT"}},
        });
        signature::sign_root(b"k", &mut body);
        body
    }

    #[test]
    fn a_mismatched_callback_is_authentic_but_names_other_money() {
        let forged = mismatched(b"k", &signed());
        assert!(signature::verify_root(b"k", &forged));
        assert_eq!(
            forged["payment"]["sum"],
            json!({"amount": 200100, "currency": "USD"})
        );
        assert_eq!(forged["operation"]["sum_initial"]["currency"], "USD");
    }

    #[test]
    fn a_callback_for_an_unknown_payment_is_authentic() {
        let forged = unknown_payment(b"k", &signed());
        assert!(signature::verify_root(b"k", &forged));
        assert!(
            forged["payment"]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("never-sent-"))
        );
    }

    #[test]
    fn an_added_empty_object_still_verifies() {
        let mut body = signed();
        assert!(add_empty_object(&mut body));
        assert_eq!(body["redirect_data"], json!({}));
        assert!(signature::verify_root(b"k", &body));
    }
}
