//! Fault injection and configured answers: what a real provider does on a bad day, per
//! endpoint, on demand.
//!
//! `PUT /sandbox/faults` takes a [`Faults`] document; `GET` shows the one in force.
//! Rates are probabilities from 0 to 1, rolled per request or per callback. Everything
//! is off by default.

use crate::Sandbox;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// By endpoint (`"POST /v2/payment/status"`), or `"*"` for every provider endpoint.
    pub endpoints: BTreeMap<String, EndpointFaults>,
    pub callbacks: CallbackFaults,
    /// Answers the providers' documents allow that a client must not take at face
    /// value.
    pub answers: Answers,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointFaults {
    /// Answer HTTP 500 without processing the request.
    pub error_rate: f64,
    /// Process the request (money may move), then answer HTTP 502: the caller cannot
    /// know it worked. Works on every provider endpoint, epay's included.
    pub error_after_rate: f64,
    /// Process the request, then hold the answer for `timeout_ms` (past the caller's
    /// timeout).
    pub timeout_rate: f64,
    pub timeout_ms: u64,
    /// Added to every answer.
    pub slow_ms: u64,
    /// Drop the connection without an answer, before processing.
    pub reset_rate: f64,
    /// Process the request, then answer HTTP 200 with a body that is not JSON.
    pub malformed_rate: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbackFaults {
    /// Never send the callback at all.
    pub loss_rate: f64,
    /// Send it twice, at once.
    pub duplicate_rate: f64,
    /// Send it `late_ms` later than usual.
    pub late_rate: f64,
    pub late_ms: u64,
}

/// Answers real providers give that a client has mishandled. Each rate is rolled per
/// request (or per callback); all are off by default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Answers {
    /// ECommPay submissions (sale, payout, refund): answer HTTP 500 and do not register
    /// the payment, as when the request is lost before Gate registers it. A later
    /// status query answers "not found".
    pub ecommpay_dropped_rate: f64,
    /// Status of a payment Gate never registered: answer HTTP 404 (instead of 400).
    pub ecommpay_not_found_404_rate: f64,
    /// Status of a payment Gate never registered: answer HTTP 200 with the error body.
    pub ecommpay_not_found_200_rate: f64,
    /// Sign the "not found" error body at its root. Off, it is unsigned: answers
    /// without payment data may be unsigned.
    pub ecommpay_not_found_signed_rate: f64,
    /// Before an outcome callback, send an authentically signed one whose
    /// `payment.sum` and `operation.sum_*` carry another amount and currency.
    pub ecommpay_callback_mismatch_rate: f64,
    /// Alongside an outcome callback, send a signed callback for a payment id the
    /// merchant never sent.
    pub ecommpay_callback_unknown_payment_rate: f64,
    /// Add `"redirect_data": {}` to an authentic callback after signing: empty objects
    /// are not part of the signature, so it still verifies.
    pub ecommpay_callback_empty_object_rate: f64,
    /// Ignore a refund request's `payment.merchant_refund_id` (the document's refund
    /// request has none) and report the refund under its purchase's id there, as both
    /// of the document's refund callbacks show. Rolled once per purchase: a Gate that
    /// ignores it does so for every request.
    pub ecommpay_refund_id_as_purchase_rate: f64,
    /// Leave `redirect_data` out of the status answer of a purchase waiting for its
    /// customer (by default it is there, so a lost redirect callback can be recovered).
    pub ecommpay_status_without_action_rate: f64,
    /// For `epay_status_lag_ms` after a transaction is created, check-status does not
    /// find it (resultCode 102), as after a lost answer.
    pub epay_status_lag_rate: f64,
    pub epay_status_lag_ms: u64,
    /// check-status on the payment path answers 102 "check transaction type
    /// (payment/p2p)" for a P2P transfer; the P2P path finds it.
    pub epay_p2p_status_split_rate: f64,
    /// `POST /payment/confirm` answers with a redirect (302, `Location`) to the payform's
    /// success page (amount, currency, invoiceID, …) or error page (invoiceID, code,
    /// message), as the P2P document shows.
    pub epay_confirm_redirect_rate: f64,
    /// `POST /payment/confirm` answers HTTP 200 with the payform's success or error page
    /// itself (HTML, not JSON): the document's "Redirect Http code 200", followed.
    pub epay_confirm_page_rate: f64,
    /// `POST /payment/confirm` of a failed 3-D Secure check answers JSON HTTP 200 with
    /// `code` 0 and the transaction's `status` (`3D`) instead of its failure.
    pub epay_confirm_code_zero_rate: f64,
    /// The Google Pay answer carries the transaction's `status` (`AUTH`, `NEW` with
    /// 3-D Secure data, `FAILED`), a decline answered HTTP 200 with `status: FAILED`.
    pub epay_google_pay_status_rate: f64,
    /// Send an authentic postLink of a finished transaction again `epay_replay_ms`
    /// later (a replay).
    pub epay_postlink_replay_rate: f64,
    pub epay_replay_ms: u64,
    /// A token, once used for a payment, transfer or confirmation, is refused after.
    pub epay_token_single_use_rate: f64,
    /// A payment or transfer under an invoice id already taken is made again, a second
    /// transaction, instead of refused with 488: the documents make the invoice id's
    /// uniqueness the merchant's duty and name no refusal for it.
    pub epay_duplicate_invoice_paid_rate: f64,
}

impl Faults {
    fn for_endpoint(&self, endpoint: &str) -> Option<&EndpointFaults> {
        self.endpoints
            .get(endpoint)
            .or_else(|| self.endpoints.get("*"))
    }
}

pub fn roll(rate: f64) -> bool {
    rate > 0.0 && rand::random::<f64>() < rate
}

/// A roll made once for `subject` (the same answer every time it is asked): for a
/// provider's way with one payment, which does not change from request to request.
pub fn roll_for(subject: &str, rate: f64) -> bool {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    subject.hash(&mut h);
    rate > 0.0 && (h.finish() % 1_000_000) as f64 / 1_000_000.0 < rate
}

/// ECommPay submissions: the requests that register a payment or an operation.
fn is_gate_submission(path: &str) -> bool {
    path.starts_with("/v2/payment/") && path != "/v2/payment/status"
}

/// Middleware in front of the simulated provider endpoints.
pub async fn inject(State(sandbox): State<Arc<Sandbox>>, req: Request, next: Next) -> Response {
    let faults = sandbox.faults();
    let count = |kind: &str| sandbox.with_stats(|s| s.fault(kind));
    if is_gate_submission(req.uri().path()) && roll(faults.answers.ecommpay_dropped_rate) {
        count("ecommpay_dropped");
        return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
    }
    let endpoint = format!("{} {}", req.method(), req.uri().path());
    let Some(f) = faults.for_endpoint(&endpoint).cloned() else {
        return next.run(req).await;
    };
    if f.slow_ms > 0 {
        tokio::time::sleep(Duration::from_millis(f.slow_ms)).await;
    }
    if roll(f.reset_rate) {
        count("reset");
        // Unwinding the connection's task drops the socket with no answer; resuming
        // skips the panic hook, so nothing is printed.
        std::panic::resume_unwind(Box::new("simulator: injected connection reset"));
    }
    if roll(f.error_rate) {
        count("error");
        return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
    }
    let response = next.run(req).await;
    if roll(f.error_after_rate) {
        count("error_after");
        return (StatusCode::BAD_GATEWAY, "Bad Gateway").into_response();
    }
    if roll(f.timeout_rate) {
        count("timeout");
        tokio::time::sleep(Duration::from_millis(f.timeout_ms)).await;
    }
    if roll(f.malformed_rate) {
        count("malformed");
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/html")
            .body(Body::from("<html><body>upstream hiccup</body></html>"))
            .unwrap_or_else(|_| StatusCode::OK.into_response());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_faults_document_reads_with_only_some_fields() {
        let f: Faults = serde_json::from_str(
            r#"{"endpoints": {"*": {"error_rate": 0.5}}, "answers": {"epay_status_lag_ms": 5}}"#,
        )
        .expect("reads");
        assert_eq!(f.endpoints["*"].error_rate, 0.5);
        assert_eq!(f.answers.epay_status_lag_ms, 5);
        assert!(serde_json::from_str::<Faults>(r#"{"answerz": {}}"#).is_err());
    }

    #[test]
    fn a_roll_for_a_subject_answers_the_same_every_time() {
        let taken: Vec<bool> = (0..200).map(|i| roll_for(&format!("p-{i}"), 0.3)).collect();
        let again: Vec<bool> = (0..200).map(|i| roll_for(&format!("p-{i}"), 0.3)).collect();
        assert_eq!(taken, again);
        let share = taken.iter().filter(|t| **t).count();
        assert!((30..=90).contains(&share), "{share} of 200 at 0.3");
        assert!(!roll_for("p", 0.0) && roll_for("p", 1.0));
    }

    #[test]
    fn rates_of_zero_and_one_are_certain() {
        assert!(!roll(0.0));
        assert!(roll(1.0));
    }
}
