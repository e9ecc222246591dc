//! `POST /v2/payment/banks/india/refund`: full refunds of Banks of India purchases.
//!
//! Test rules (deterministic, documented in the README):
//! - a purchase Gate does not know → refused, code 3062 "Payment not found";
//! - a purchase that is not paid, or already refunded by another refund → refused,
//!   code 1202; the same refund again (same `merchant_refund_id`) → 3061;
//! - less than the purchase → refused, code 1202 (the method refunds in full only);
//! - more than the purchase → declined by callback, code 3283 "Refund amount more than
//!   init amount", `payment.status` staying `success`;
//! - `payment.description` starting with `decline` → declined, code 20000;
//! - anything else → refunded, code 0, `payment.status` `refunded`.

use super::{Answer, Payment, accept, call_back, duplicate, invalid, lookup, signed_report};
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::State;
use payfleet::providers::ecommpay::{codes, india, india_refund};
use serde_json::{Value, json};
use std::sync::Arc;

pub const PATH: &str = india_refund::PATH;

/// A refund operation on a purchase.
#[derive(Debug, Clone)]
pub struct Refund {
    pub merchant_refund_id: String,
    pub operation_id: u64,
    pub amount: u64,
    pub status: &'static str,
    pub code: &'static str,
    pub message: &'static str,
}

pub async fn handle(State(sandbox): State<Arc<Sandbox>>, raw: Bytes) -> Answer {
    let req = match accept(&sandbox, &format!("POST {PATH}"), &raw) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let b = &req.body;
    let project_id = sandbox.settings.ecommpay_project_id;
    let Some(description) = b["payment"]["description"]
        .as_str()
        .filter(|d| !d.is_empty())
    else {
        return invalid(&sandbox, &req, "payment.description is required");
    };
    let refund_id = b["payment"]["merchant_refund_id"]
        .as_str()
        .unwrap_or(&req.payment_id)
        .to_owned();
    let Some(payment) = lookup(&sandbox, &req.payment_id) else {
        return req.error(project_id, codes::PAYMENT_NOT_FOUND, "Payment not found");
    };
    let mut india = sandbox.india.lock().expect("india lock");
    let Some(purchase) = india.by_id.get_mut(&req.payment_id) else {
        drop(india);
        return invalid(
            &sandbox,
            &req,
            "the payment is not a Banks of India purchase",
        );
    };
    if let Some(existing) = &purchase.refund {
        let same = existing.merchant_refund_id == refund_id;
        drop(india);
        if same {
            return duplicate(
                &sandbox,
                &req,
                "Refund with this merchant_refund_id already exists",
            );
        }
        return invalid(&sandbox, &req, "the payment was already refunded");
    }
    if payment.status != "success" {
        drop(india);
        return invalid(
            &sandbox,
            &req,
            &format!("a payment in status {} cannot be refunded", payment.status),
        );
    }
    let amount = match &b["payment"]["amount"] {
        Value::Null => payment.amount,
        v => match v.as_u64().filter(|a| *a > 0) {
            Some(a) if b["payment"]["currency"].as_str().unwrap_or("INR") == payment.currency => a,
            _ => {
                drop(india);
                return invalid(
                    &sandbox,
                    &req,
                    "payment.amount must be a positive INR amount",
                );
            }
        },
    };
    if amount < payment.amount {
        drop(india);
        return invalid(
            &sandbox,
            &req,
            "Banks of India refunds the whole purchase only",
        );
    }
    let (status, code, message) = if amount > payment.amount {
        (
            "decline",
            codes::REFUND_TOO_LARGE,
            "Refund amount more than init amount",
        )
    } else if description.starts_with("decline") {
        ("decline", codes::GENERAL_DECLINE, "General decline")
    } else {
        ("success", codes::SUCCESS, "Success")
    };
    let refund = Refund {
        merchant_refund_id: refund_id.clone(),
        operation_id: payment.operation_id + 1,
        amount,
        status,
        code,
        message,
    };
    purchase.refund = Some(refund.clone());
    drop(india);
    if status == "success" {
        sandbox
            .stats
            .lock()
            .expect("stats lock")
            .executed(&refund_id);
    }
    let callback = report(&sandbox, &req.payment_id, &payment, &refund, false);
    call_back(&sandbox, callback);
    req.accepted(project_id)
}

/// A callback or status answer about a refunded purchase: the refund is the operation
/// (the status answer lists the sale before it); `payment.status` becomes `refunded`
/// only when the refund succeeded.
pub fn report(
    sandbox: &Sandbox,
    payment_id: &str,
    purchase: &Payment,
    refund: &Refund,
    operations_list: bool,
) -> Value {
    let view = Payment {
        operation_type: "refund",
        operation_id: refund.operation_id,
        amount: refund.amount,
        status: refund.status,
        code: refund.code,
        message: refund.message,
        ..purchase.clone()
    };
    let mut body = signed_report(sandbox, payment_id, &view, operations_list);
    body["payment"]["status"] = json!(if refund.status == "success" {
        "refunded"
    } else {
        purchase.status
    });
    body["payment"]["sum"]["amount"] = json!(if refund.status == "success" {
        0
    } else {
        purchase.amount
    });
    body["payment"]["merchant_refund_id"] = json!(refund.merchant_refund_id);
    body["payment"]["method"] = json!(india::METHOD_NAME);
    if operations_list {
        let sale = signed_report(sandbox, payment_id, purchase, true)["operations"][0].clone();
        let refund_op = body["operations"][0].clone();
        body["operations"] = json!([sale, refund_op]);
    }
    super::sign(sandbox, &mut body);
    body
}
