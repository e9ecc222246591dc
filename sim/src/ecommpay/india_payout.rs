//! `POST /v2/payment/banks/india/payout` (Banks of India, "Payout by using Gate"):
//! `general`, `payment` (amount, currency), `customer` (id, ip_address), `account`
//! (number, bank_code "IFSC code of the bank branch", bank_id, customer_name). Amounts
//! 1,000.00–500,000.00 INR ("Operations support"); only in working hours.
//!
//! Test rules: outside Mon–Fri 10:30–19:00 GMT+8 refused (code 3400);
//! `account.customer_name` starting with `decline` → declined by callback, 20000
//! "General decline"; otherwise paid out.

use super::book::{self, OpStatus, Payment};
use super::{callbacks, codes, gate, india_banks, india_hours};
use crate::{Sandbox, money};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use std::sync::Arc;

pub const PATH: &str = "/v2/payment/banks/india/payout";
/// `payment.method` of the document's callbacks.
pub const METHOD: &str = "India banks";
pub const MIN_MINOR: u64 = 1_000_00;
pub const MAX_MINOR: u64 = 500_000_00;

/// An IFSC: four letters, a zero, six letters or digits.
pub fn is_ifsc(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 11
        && b[..4].iter().all(u8::is_ascii_uppercase)
        && b[4] == b'0'
        && b[5..].iter().all(u8::is_ascii_alphanumeric)
}

pub async fn handle(State(sandbox): State<Arc<Sandbox>>, raw: Bytes) -> Response {
    let req = match gate::accept(&sandbox, &format!("POST {PATH}"), &raw) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let amount = money::gate_minor(&req.body["payment"]["amount"]);
    let Some(amount) = amount.filter(|_| req.text("payment", "currency") == Some("INR")) else {
        return req.invalid(
            &sandbox,
            "payment.amount and payment.currency INR are required",
        );
    };
    if !(MIN_MINOR..=MAX_MINOR).contains(&amount) {
        return req.invalid(
            &sandbox,
            "payment.amount must be 1,000.00 to 500,000.00 INR",
        );
    }
    if let Err(a) = req.require(&sandbox, "customer", &["id", "ip_address"]) {
        return a;
    }
    if let Err(a) = req.require(
        &sandbox,
        "account",
        &["number", "bank_code", "customer_name"],
    ) {
        return a;
    }
    if !is_ifsc(req.text("account", "bank_code").unwrap_or_default()) {
        return req.invalid(&sandbox, "account.bank_code must be an IFSC");
    }
    if india_banks::listed(&req.body["account"]["bank_id"]).is_none() {
        return req.invalid(&sandbox, "account.bank_id is not a supported bank");
    }
    if !india_hours::is_open(india_hours::provider_now(sandbox.settings.clock_offset_ms)) {
        let m = "Payouts are processed Monday to Friday 10:30-19:00 GMT+8";
        return req.error(StatusCode::BAD_REQUEST, codes::OUTSIDE_WORKING_HOURS, m);
    }
    let holder = req.text("account", "customer_name").unwrap_or_default();
    let mut op = book::operation("payout", amount, "INR", &req.request_id);
    (op.status, op.code, op.message) = if holder.starts_with("decline") {
        (OpStatus::Decline, codes::GENERAL_DECLINE, "General decline")
    } else {
        (OpStatus::Success, codes::SUCCESS, "Success")
    };
    let payment = Payment {
        payment_id: req.payment_id.clone(),
        project_id: req.project_id,
        payment_type: "payout",
        method: METHOD,
        description: req
            .text("payment", "description")
            .unwrap_or_default()
            .to_owned(),
        customer: json!({ "id": req.body["customer"]["id"] }),
        account: Some(json!({ "number": req.body["account"]["number"] })),
        op,
        sale: None,
        refund: None,
    };
    let Some(payment) = book::register(&sandbox, payment) else {
        return req.duplicate(&sandbox);
    };
    callbacks::call_back(&sandbox, &payment);
    req.accepted()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifsc_codes_are_checked() {
        assert!(is_ifsc("HDFC0001234"));
        assert!(is_ifsc("SBIN0ABC123"));
        for bad in ["test_code", "HDFC1001234", "hdfc0001234", "HDFC000123", ""] {
            assert!(!is_ifsc(bad), "{bad}");
        }
    }
}
