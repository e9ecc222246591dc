//! `POST /v2/info/banks/india/sale/list` and `/v2/info/banks/india/payout/list`:
//! "The request must contain the project and payment IDs, signature, currency, and
//! payment amount"; the answer lists Table 1 of the Banks of India document.

use super::gate;
use crate::{Sandbox, money};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

pub const SALE_PATH: &str = "/v2/info/banks/india/sale/list";
pub const PAYOUT_PATH: &str = "/v2/info/banks/india/payout/list";

/// Table 1. List of banks.
pub const BANKS: [(u32, &str); 16] = [
    (401, "Axis Bank"),
    (416, "Bank of Baroda"),
    (408, "Bank of India"),
    (405, "Canara Bank"),
    (414, "Central Bank of India"),
    (412, "HDFC Bank"),
    (406, "ICICI Bank"),
    (409, "IDBI Bank"),
    (402, "Indian Bank"),
    (411, "Karnataka Bank"),
    (404, "Kotak Mahindra Bank"),
    (407, "Punjab National Bank"),
    (410, "Standard Charter Bank"),
    (403, "State Bank of India"),
    (415, "Union Bank of India"),
    (413, "Yes Bank"),
];

pub fn name(bank_id: u32) -> Option<&'static str> {
    BANKS.iter().find(|(id, _)| *id == bank_id).map(|(_, n)| *n)
}

/// A listed bank id from JSON.
pub fn listed(v: &serde_json::Value) -> Option<u32> {
    v.as_u64()
        .and_then(|id| u32::try_from(id).ok())
        .filter(|id| name(*id).is_some())
}

fn list(sandbox: &Sandbox, path: &str, raw: &[u8]) -> Response {
    let req = match gate::accept(sandbox, &format!("POST {path}"), raw) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    if money::gate_minor(&req.body["payment"]["amount"]).is_none()
        || req.text("payment", "currency") != Some("INR")
    {
        return req.invalid(
            sandbox,
            "payment.amount and payment.currency INR are required",
        );
    }
    let banks: Vec<_> = BANKS
        .iter()
        .map(|(id, name)| json!({ "id": id, "name": name }))
        .collect();
    Json(json!(banks)).into_response()
}

pub async fn sale(State(sandbox): State<Arc<Sandbox>>, raw: Bytes) -> Response {
    list(&sandbox, SALE_PATH, &raw)
}

pub async fn payout(State(sandbox): State<Arc<Sandbox>>, raw: Bytes) -> Response {
    list(&sandbox, PAYOUT_PATH, &raw)
}
