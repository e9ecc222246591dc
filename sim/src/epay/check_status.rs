//! `GET /check-status/payment/transaction/:invoiceid` (status document), and the P2P
//! counterpart `GET /check-status/p2p/transaction/:invoiceid` (the documents name no
//! P2P path; resultCode 102 "check transaction type (payment/p2p)" implies one beside
//! the payment path, and this is its shape).
//!
//! resultCode: 100 with `statusName`; 102 "Invoice not found, try again later or check
//! transaction type (payment/p2p)"; 104 "Field terminal absent in token"; 106 "Error,
//! incorrect terminalID".

use super::book::{Kind, Txn};
use super::{answer, authorise};
use crate::faults::roll;
use crate::{Sandbox, money};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

pub const PAYMENT_ROUTE: &str = "/check-status/payment/transaction/{invoice_id}";
pub const P2P_ROUTE: &str = "/check-status/p2p/transaction/{invoice_id}";

fn result(code: &str, message: &str) -> Response {
    Json(json!({ "resultCode": code, "resultMessage": message, "transaction": null }))
        .into_response()
}

pub fn not_found() -> Response {
    result(
        "102",
        "Invoice not found, try again later or check transaction type (payment/p2p)",
    )
}

/// The status document's `transaction` object.
pub fn transaction(sandbox: &Sandbox, t: &Txn) -> Value {
    json!({
        "id": t.id,
        "createdDate": t.created.to_rfc3339(),
        "invoiceID": t.invoice_id,
        "amount": money::epay_json(t.amount_minor, &t.currency),
        "amountBonus": 0,
        "currency": t.currency,
        "terminal": "98120001",
        "terminalID": sandbox.settings.epay_terminal_id,
        "accountID": t.account_id,
        "description": t.description,
        "language": "RU",
        "cardMask": t.card_mask,
        "reference": answer::reference(t),
        "reason": t.reason,
        "reasonCode": format!("{:02}", t.reason_code),
        "secure": t.md.is_some(),
        "statusName": t.status,
    })
}

fn answer(sandbox: &Arc<Sandbox>, headers: &HeaderMap, invoice_id: &str, path: Kind) -> Response {
    let endpoint = match path {
        Kind::Payment => "GET /check-status/payment/transaction/:invoiceid",
        Kind::P2p => "GET /check-status/p2p/transaction/:invoiceid",
    };
    sandbox.with_stats(|s| s.request(endpoint));
    let grant = match authorise(sandbox, headers, None, None) {
        Ok(g) => g,
        Err(a) => return a,
    };
    match grant.terminal.as_deref() {
        None => return result("104", "Field terminal absent in token"),
        Some(t) if t != sandbox.settings.epay_terminal_id => {
            return result("106", "Error, incorrect terminalID");
        }
        Some(_) => {}
    }
    let txn = sandbox
        .epay
        .lock()
        .expect("epay lock")
        .txns
        .get(invoice_id)
        .cloned();
    let Some(t) = txn.filter(|t| t.visible_from <= Instant::now()) else {
        return not_found();
    };
    let split = roll(sandbox.answers().epay_p2p_status_split_rate);
    let wrong_path = match path {
        // The P2P path knows only transfers.
        Kind::P2p => t.kind != Kind::P2p,
        Kind::Payment => t.kind == Kind::P2p && split,
    };
    if wrong_path {
        if path == Kind::Payment {
            sandbox.with_stats(|s| s.fault("p2p_status_split"));
        }
        return not_found();
    }
    Json(json!({
        "resultCode": "100",
        "resultMessage": "SUCCESS",
        "transaction": transaction(sandbox, &t),
    }))
    .into_response()
}

pub async fn payment(
    State(s): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer(&s, &headers, &id, Kind::Payment)
}

pub async fn p2p(
    State(s): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer(&s, &headers, &id, Kind::P2p)
}
