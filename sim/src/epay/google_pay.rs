//! `POST /payment/cryptopay` with `paymentType: googlePay`, as the Google Pay document
//! describes it.

use super::{
    Answer, accept, authorise, bound_amount, decline, invalid, new_txn, payment_answer, record,
};
use crate::Sandbox;
use axum::extract::State;
use axum::http::HeaderMap;
use payfleet::providers::epay::{codes, google_pay};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::sync::Arc;

pub const PATH: &str = google_pay::PATH;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    amount: Box<RawValue>,
    currency: String,
    name: String,
    terminal_id: String,
    invoice_id: String,
    description: String,
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
) -> Answer {
    let b: Body = match accept(
        &sandbox,
        PATH,
        &raw,
        "request body does not match the Google Pay format",
    ) {
        Ok(b) => b,
        Err(a) => return a,
    };
    let grant = match authorise(
        &sandbox,
        &headers,
        Some(codes::SCOPE_PAYMENT),
        Some(&b.invoice_id),
    ) {
        Ok(g) => g,
        Err(a) => return a,
    };
    let m = &b.google_pay.payment_method_data;
    if b.terminal_id != sandbox.settings.epay_terminal_id
        || b.payment_type != "googlePay"
        || m.tokenization_data.kind != "PAYMENT_GATEWAY"
        || m.tokenization_data.token.is_empty()
        || b.name.is_empty()
    {
        return invalid(
            &sandbox,
            "terminalId, paymentType, name or tokenizationData is wrong",
            &b.invoice_id,
        );
    }
    let amount = match bound_amount(&sandbox, &grant, &b.amount, &b.currency, &b.invoice_id) {
        Ok(a) => a,
        Err(a) => return a,
    };
    let mut txn = new_txn(&grant, &b.invoice_id, amount, &b.description);
    txn.post_link = b.post_link.clone();
    txn.failure_post_link = b.failure_post_link.clone();
    txn.card_mask = format!("{} ****{}", m.info.card_network, m.info.card_details);
    match m.info.card_details.as_str() {
        "6736" => {
            txn.status = "NEW";
            txn.md = Some(format!("{}-{}", txn.invoice_id, &txn.id[..8]));
        }
        "7597" => decline(&mut txn, "FAILED", codes::CARD_LOCKED, "Card is locked"),
        _ => {}
    }
    match record(&sandbox, txn) {
        Ok(t) => payment_answer(&t, serde_json::json!({ "accountId": "" })),
        Err(a) => a,
    }
}
