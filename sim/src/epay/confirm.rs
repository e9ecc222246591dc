//! `POST /payment/confirm`: the result of the customer's 3-D Secure check.

use super::{Answer, accept, authorise, count, decline, failure, invalid, post_link};
use crate::Sandbox;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use payfleet::providers::epay::{codes, confirm_3ds};
use serde::Deserialize;
use std::sync::Arc;

pub const PATH: &str = confirm_3ds::PATH;

#[derive(Deserialize)]
struct Body {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "PaRes")]
    pa_res: String,
    #[serde(rename = "MD")]
    md: String,
}

pub async fn handle(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Answer {
    let b: Body = match accept(&sandbox, PATH, &raw, "ID, PaRes and MD are required") {
        Ok(b) => b,
        Err(a) => return a,
    };
    let found = {
        let book = sandbox.epay.lock().expect("epay lock");
        book.txns.values().find(|t| t.id == b.id).cloned()
    };
    let Some(mut txn) = found else {
        return failure(
            StatusCode::NOT_FOUND,
            codes::INVALID_REQUEST,
            "transaction not found",
            "",
        );
    };
    if let Err(a) = authorise(&sandbox, &headers, None, Some(&txn.invoice_id)) {
        return a;
    }
    if txn.status != "NEW" || txn.md.as_deref() != Some(b.md.as_str()) {
        return invalid(
            &sandbox,
            "no 3-D Secure check pending for this ID and MD",
            &txn.invoice_id,
        );
    }
    if b.pa_res == "FAIL" {
        decline(
            &mut txn,
            "3D",
            codes::SECURE3D_FAILED,
            "3-D Secure verification failed",
        );
    } else {
        txn.status = "AUTH";
        count(&sandbox, |s| s.executed(&txn.invoice_id));
    }
    sandbox
        .epay
        .lock()
        .expect("epay lock")
        .txns
        .insert(txn.invoice_id.clone(), txn.clone());
    post_link(&sandbox, &txn);
    if txn.status != "AUTH" {
        return failure(
            StatusCode::BAD_REQUEST,
            txn.reason_code,
            txn.reason,
            &txn.invoice_id,
        );
    }
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({
            "code": codes::SUCCESS,
            "status": "AUTH",
            "invoiceID": txn.invoice_id,
            "amount": super::amount_json(&txn),
            "currency": txn.currency,
            "accountID": "",
            "description": txn.description,
            "reference": format!("{:012}", txn.amount_minor),
            "language": "rus",
            "cardid": "",
        })),
    )
}
