//! `POST /v2/info/banks/india/{sale,payout}/list`: the banks of the document's table.

use super::{Answer, accept};
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use payfleet::providers::ecommpay::india_banks::{Bank, Direction};
use std::sync::Arc;

/// Table 1 of the Banks of India document.
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

fn list(sandbox: &Sandbox, direction: Direction, raw: &[u8]) -> Answer {
    if let Err(answer) = accept(sandbox, &format!("POST {}", direction.path()), raw) {
        return answer;
    }
    let banks: Vec<Bank> = BANKS
        .iter()
        .map(|(id, name)| Bank {
            id: *id,
            name: (*name).to_owned(),
        })
        .collect();
    (StatusCode::OK, axum::Json(serde_json::json!(banks)))
}

pub async fn sale(State(sandbox): State<Arc<Sandbox>>, raw: Bytes) -> Answer {
    list(&sandbox, Direction::Sale, &raw)
}

pub async fn payout(State(sandbox): State<Arc<Sandbox>>, raw: Bytes) -> Answer {
    list(&sandbox, Direction::Payout, &raw)
}
