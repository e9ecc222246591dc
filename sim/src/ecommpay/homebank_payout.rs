//! `POST /v2/payment/cash-out-kz/homebank/payout` (HomeBank document, "Request
//! format"): `general`, `customer` (id, phone, ip_address), `payment` (amount "in the
//! currency minor units", currency "EUR, KZT, RUB, USD").
//!
//! Test rules: `customer.id` starting with `decline` → declined by callback, code 20602
//! "Time-out" (the customer did not cash out within 24 hours); otherwise paid out.

use super::book::{self, OpStatus, Payment};
use super::{callbacks, codes, gate};
use crate::{Sandbox, money};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde_json::json;
use std::sync::Arc;

pub const PATH: &str = "/v2/payment/cash-out-kz/homebank/payout";
pub const CURRENCIES: [&str; 4] = ["EUR", "KZT", "RUB", "USD"];

/// "If the payout amount is less than 4,000.00 KZT, the amount must be a multiple of
/// 2,000.00 KZT, if the payout amount is more than 4,000.00 KZT the amount must be a
/// multiple of 1,000.00 KZT." (4,000.00 itself is a multiple of both.)
pub fn check_kzt(minor: u64) -> Result<(), &'static str> {
    let multiple = if minor < 4_000_00 { 2_000_00 } else { 1_000_00 };
    if minor.is_multiple_of(multiple) {
        Ok(())
    } else if multiple == 2_000_00 {
        Err("KZT payouts below 4,000.00 must be a multiple of 2,000.00")
    } else {
        Err("KZT payouts above 4,000.00 must be a multiple of 1,000.00")
    }
}

pub async fn handle(State(sandbox): State<Arc<Sandbox>>, raw: Bytes) -> Response {
    let req = match gate::accept(&sandbox, &format!("POST {PATH}"), &raw) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    if let Err(a) = req.require(&sandbox, "customer", &["id", "phone", "ip_address"]) {
        return a;
    }
    let Some(amount) = money::gate_minor(&req.body["payment"]["amount"]) else {
        let m = "payment.amount must be a positive integer of minor units";
        return req.invalid(&sandbox, m);
    };
    let currency = req.text("payment", "currency").unwrap_or_default();
    if !CURRENCIES.contains(&currency) {
        return req.invalid(&sandbox, "payment.currency must be EUR, KZT, RUB or USD");
    }
    if currency == "KZT"
        && let Err(m) = check_kzt(amount)
    {
        return req.invalid(&sandbox, m);
    }
    let customer_id = req.text("customer", "id").unwrap_or_default();
    let mut op = book::operation("payout", amount, currency, &req.request_id);
    (op.status, op.code, op.message) = if customer_id.starts_with("decline") {
        (OpStatus::Decline, codes::TIME_OUT, "Time-out")
    } else {
        (OpStatus::Success, codes::SUCCESS, "Success")
    };
    let payment = Payment {
        payment_id: req.payment_id.clone(),
        project_id: req.project_id,
        payment_type: "payout",
        method: book::HOMEBANK_PAYOUT_METHOD,
        description: req
            .text("payment", "description")
            .unwrap_or_default()
            .to_owned(),
        customer: json!({ "id": customer_id, "phone": req.body["customer"]["phone"] }),
        account: None,
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
    fn kzt_amounts_follow_the_documents_multiples() {
        for ok in [2_000_00, 4_000_00, 5_000_00, 30_000_00] {
            assert!(check_kzt(ok).is_ok(), "{ok}");
        }
        for bad in [1_000_00, 3_000_00, 2_000_01, 4_500_00, 5_000_50] {
            assert!(check_kzt(bad).is_err(), "{bad}");
        }
    }
}
