//! `POST /v2/payment/cash-out-kz/homebank/payout`, as the HomeBank document describes.
//!
//! Test rules (deterministic, documented in the README):
//! - `customer.id` starting with `decline` → declined, code 20602 "Time-out" (the
//!   customer did not cash out within 24 hours);
//! - anything else → paid out, code 0 "Success".

use super::{Answer, Payment, accept, call_back, invalid, register, signed_report};
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::State;
use payfleet::contract::{Amount, Currency, Money};
use payfleet::providers::ecommpay::{codes, homebank_payout};
use serde_json::Value;
use std::sync::Arc;

pub const PATH: &str = homebank_payout::PATH;

pub async fn handle(State(sandbox): State<Arc<Sandbox>>, raw: Bytes) -> Answer {
    let req = match accept(&sandbox, &format!("POST {PATH}"), &raw) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let b = &req.body;
    let Some(amount) = b["payment"]["amount"].as_u64().filter(|a| *a > 0) else {
        return invalid(
            &sandbox,
            &req,
            "payment.amount must be a positive integer in minor units",
        );
    };
    let currency = b["payment"]["currency"].as_str().unwrap_or_default();
    let Ok(currency_code) = serde_json::from_value::<Currency>(Value::from(currency)) else {
        return invalid(
            &sandbox,
            &req,
            "payment.currency must be EUR, KZT, RUB or USD",
        );
    };
    let money = Money {
        minor: Amount::parse(amount).expect("positive"),
        currency: currency_code,
    };
    if let Err(e) = payfleet::contract::methods::homebank_payout::check_amount(money) {
        return invalid(&sandbox, &req, &e);
    }
    let customer = &b["customer"];
    for field in ["id", "phone", "ip_address"] {
        if customer[field].as_str().is_none_or(str::is_empty) {
            return invalid(&sandbox, &req, &format!("customer.{field} is required"));
        }
    }
    let declined = customer["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("decline"));
    let (status, code, message) = if declined {
        ("decline", codes::TIME_OUT, "Time-out")
    } else {
        ("success", codes::SUCCESS, "Success")
    };
    let payment = Payment {
        payment_type: "payout",
        operation_type: "payout",
        method: "homebank-payout",
        operation_id: 0,
        amount,
        currency: currency.to_owned(),
        customer: serde_json::json!({ "id": customer["id"], "phone": customer["phone"] }),
        status,
        code,
        message,
    };
    let project_id = sandbox.settings.ecommpay_project_id;
    let payment = match register(&sandbox, &req, payment) {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    let callback = signed_report(&sandbox, &req.payment_id, &payment, false);
    call_back(&sandbox, callback);
    req.accepted(project_id)
}
