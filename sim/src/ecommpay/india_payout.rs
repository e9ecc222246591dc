//! `POST /v2/payment/banks/india/payout`, as the Banks of India document describes.
//!
//! Test rules (deterministic, documented in the README):
//! - outside Monday to Friday 10:30-19:00 GMT+8 (by the sandbox's clock,
//!   `sandbox.clock_offset_ms`) the request is refused, code 3400;
//! - `account.customer_name` starting with `decline` → declined, code 20000 "General
//!   decline";
//! - anything else → paid out, code 0 "Success".

use super::{Answer, Payment, accept, call_back, india_banks, invalid, register, signed_report};
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::State;
use payfleet::contract::{Amount, Currency, Money};
use payfleet::providers::ecommpay::india_hours::{self, OffsetClock};
use payfleet::providers::ecommpay::{codes, india, india_payout};
use std::sync::Arc;

pub const PATH: &str = india_payout::PATH;

pub async fn handle(State(sandbox): State<Arc<Sandbox>>, raw: Bytes) -> Answer {
    let req = match accept(&sandbox, &format!("POST {PATH}"), &raw) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let b = &req.body;
    let Some(amount) = super::india_sale::inr_amount(b) else {
        return invalid(
            &sandbox,
            &req,
            "payment.amount and payment.currency INR are required",
        );
    };
    let money = Money {
        minor: Amount::parse(amount).expect("positive"),
        currency: Currency::INR,
    };
    if let Err(e) = payfleet::contract::methods::india_payout::check_amount(money) {
        return invalid(&sandbox, &req, &e);
    }
    for field in ["id", "ip_address"] {
        if b["customer"][field].as_str().is_none_or(str::is_empty) {
            return invalid(&sandbox, &req, &format!("customer.{field} is required"));
        }
    }
    let account = &b["account"];
    for field in ["number", "bank_code", "customer_name"] {
        if account[field].as_str().is_none_or(str::is_empty) {
            return invalid(&sandbox, &req, &format!("account.{field} is required"));
        }
    }
    if !payfleet::contract::methods::india_payout::is_ifsc(
        account["bank_code"].as_str().unwrap_or_default(),
    ) {
        return invalid(&sandbox, &req, "account.bank_code must be an IFSC");
    }
    let bank_id = account["bank_id"]
        .as_u64()
        .and_then(|id| u32::try_from(id).ok());
    if bank_id.and_then(india_banks::name).is_none() {
        return invalid(&sandbox, &req, "account.bank_id is not a supported bank");
    }
    let project_id = sandbox.settings.ecommpay_project_id;
    let clock = OffsetClock::from_ms(sandbox.settings.clock_offset_ms);
    if !india_hours::is_open(india_hours::Clock::now(&clock)) {
        return req.error(
            project_id,
            codes::OUTSIDE_WORKING_HOURS,
            "Payouts are processed Monday to Friday 10:30-19:00 GMT+8",
        );
    }
    let declined = account["customer_name"]
        .as_str()
        .is_some_and(|n| n.starts_with("decline"));
    let (status, code, message) = if declined {
        ("decline", codes::GENERAL_DECLINE, "General decline")
    } else {
        ("success", codes::SUCCESS, "Success")
    };
    let payment = Payment {
        payment_type: "payout",
        operation_type: "payout",
        method: india::METHOD_NAME,
        operation_id: 0,
        amount,
        currency: "INR".to_owned(),
        customer: serde_json::json!({ "id": b["customer"]["id"] }),
        status,
        code,
        message,
    };
    let payment = match register(&sandbox, &req, payment) {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    let mut callback = signed_report(&sandbox, &req.payment_id, &payment, false);
    callback["account"] = serde_json::json!({ "number": account["number"] });
    super::sign(&sandbox, &mut callback);
    call_back(&sandbox, callback);
    req.accepted(project_id)
}
