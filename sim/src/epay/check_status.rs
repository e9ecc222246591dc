//! `GET /check-status/payment/transaction/:invoiceid`, as the status document shows it.

use super::{amount_json, authorise, count};
use crate::Sandbox;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use payfleet::providers::epay::codes::result;
use serde_json::{Value, json};
use std::sync::Arc;

pub const ROUTE: &str = "/check-status/payment/transaction/{invoice_id}";

pub async fn handle(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Path(invoice_id): Path<String>,
) -> (StatusCode, axum::Json<Value>) {
    count(&sandbox, |s| {
        s.request("GET /check-status/payment/transaction/:invoiceid")
    });
    if let Err(a) = authorise(&sandbox, &headers, None, None) {
        return a;
    }
    let txn = sandbox
        .epay
        .lock()
        .expect("epay lock")
        .txns
        .get(&invoice_id)
        .cloned();
    let Some(t) = txn else {
        return (
            StatusCode::OK,
            axum::Json(json!({
                "resultCode": result::NOT_FOUND,
                "resultMessage": "Invoice not found, try again later or check transaction type (payment/p2p)",
                "transaction": null,
            })),
        );
    };
    (
        StatusCode::OK,
        axum::Json(json!({
            "resultCode": result::SUCCESS,
            "resultMessage": "SUCCESS",
            "transaction": {
                "id": t.id,
                "createdDate": chrono::Utc::now().to_rfc3339(),
                "invoiceID": t.invoice_id,
                "amount": amount_json(&t),
                "amountBonus": 0,
                "currency": t.currency,
                "terminal": "98120001",
                "terminalID": sandbox.settings.epay_terminal_id,
                "accountID": "",
                "description": t.description,
                "language": "RU",
                "cardMask": t.card_mask,
                "reason": t.reason,
                "reasonCode": t.reason_code.to_string(),
                "secure": t.md.is_some(),
                "statusName": t.status,
            },
        })),
    )
}
