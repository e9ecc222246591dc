//! `POST /payment/cryptopay` with `paymentType: googlePay` (Google Pay document; the
//! document shows the body but no path, so this is the path payfleet's sandbox had).
//! Required: amount, currency, name, invoiceId, description, cardSave ("boolean type"),
//! terminalId, and `googlePay.paymentMethodData` with `tokenizationData` (type
//! PAYMENT_GATEWAY, token) and `info` (cardNetwork, cardDetails).
//!
//! The document shows no answer ("you expect to receive a response with payment status
//! information. Process the response accordingly … using the Payment Status Check
//! service"): by default the answer says the payment was taken (code 0, no status),
//! 3-D Secure data when a check is needed, a failure body for a decline. The
//! configured answer `epay_google_pay_status_rate` adds the `status`.

use super::answer::{self, CARD_LOCKED, SCOPE_PAYMENT};
use super::book::Kind;
use super::{accept, authorise, bound_amount, decline, invalid, new_txn, record};
use crate::Sandbox;
use crate::faults::roll;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use std::sync::Arc;

pub const PATH: &str = "/payment/cryptopay";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    amount: Box<RawValue>,
    currency: String,
    name: String,
    terminal_id: String,
    invoice_id: String,
    description: String,
    card_save: bool,
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    post_link: String,
    #[serde(default)]
    failure_post_link: String,
    payment_type: String,
    google_pay: GooglePay,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GooglePay {
    payment_method_data: MethodData,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MethodData {
    tokenization_data: TokenizationData,
    info: Info,
}

#[derive(Deserialize)]
struct TokenizationData {
    #[serde(rename = "type")]
    kind: String,
    token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Info {
    card_network: String,
    card_details: String,
}

pub async fn handle(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Response {
    let what = "request body does not match the Google Pay format";
    let b: Body = match accept(&sandbox, PATH, &raw, what) {
        Ok(b) => b,
        Err(a) => return a,
    };
    let grant = match authorise(&sandbox, &headers, Some(SCOPE_PAYMENT), Some(&b.invoice_id)) {
        Ok(g) => g,
        Err(a) => return a,
    };
    let m = &b.google_pay.payment_method_data;
    if b.terminal_id != sandbox.settings.epay_terminal_id {
        return answer::failure(
            StatusCode::BAD_REQUEST,
            answer::NOT_PERMITTED,
            "Not permitted to merchant",
            &b.invoice_id,
        );
    }
    if b.payment_type != "googlePay"
        || m.tokenization_data.kind != "PAYMENT_GATEWAY"
        || m.tokenization_data.token.is_empty()
        || b.name.trim().is_empty()
        || b.description.trim().is_empty()
    {
        let m = "paymentType, name, description or tokenizationData is wrong";
        return invalid(&sandbox, m, &b.invoice_id);
    }
    let amount = match bound_amount(&sandbox, &grant, &b.amount, &b.currency, &b.invoice_id) {
        Ok(a) => a,
        Err(a) => return a,
    };
    let _ = b.card_save;
    let mut txn = new_txn(&grant, Kind::Payment, &b.invoice_id, amount, &b.description);
    txn.account_id = b.account_id.clone();
    txn.post_link = b.post_link.clone();
    txn.failure_post_link = b.failure_post_link.clone();
    txn.card_mask = format!("{} ****{}", m.info.card_network, m.info.card_details);
    match m.info.card_details.as_str() {
        "6736" => super::ask_3ds(&mut txn),
        "7597" => decline(&mut txn, "FAILED", CARD_LOCKED, "Card is locked"),
        _ => {}
    }
    let t = match record(&sandbox, txn) {
        Ok(t) => t,
        Err(a) => return a,
    };
    let with_status = roll(sandbox.answers().epay_google_pay_status_rate);
    if with_status {
        sandbox.with_stats(|s| s.fault("google_pay_status"));
    }
    let mut body = answer::base(&t);
    match (t.status, with_status) {
        ("AUTH" | "NEW", _) => body["code"] = json!(answer::SUCCESS),
        (_, false) => {
            return answer::failure(
                StatusCode::BAD_REQUEST,
                t.reason_code,
                &t.reason,
                &t.invoice_id,
            );
        }
        (_, true) => {
            body["code"] = json!(t.reason_code);
            body["message"] = json!(t.reason);
        }
    }
    if t.status == "NEW" {
        body["secure3D"] = answer::secure3d(&t);
    }
    if with_status {
        body["status"] = json!(t.status);
    }
    (StatusCode::OK, Json(body)).into_response()
}
