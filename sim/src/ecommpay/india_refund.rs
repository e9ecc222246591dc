//! `POST /v2/payment/banks/india/refund` (Banks of India, "Refunds by using Gate"):
//! `general` and `payment.description`. "Banks of India supports full refunds
//! processing" (partial refunds: no). A refund larger than the purchase is declined by
//! callback, code 3283 "Refund amount more than init amount", the purchase staying
//! `success`; a successful one makes it `refunded` with `sum.amount` 0.
//!
//! Test rules: unknown purchase → 3061 "Transaction not found"; not paid, or refunded
//! already, or less than the purchase → 1202; the same `merchant_refund_id` again →
//! duplicate; `payment.description` starting with `decline` → declined, 20000.

use super::book::{self, OpStatus, Refund};
use super::{callbacks, codes, gate};
use crate::{Sandbox, money};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use std::sync::Arc;

pub const PATH: &str = "/v2/payment/banks/india/refund";

pub async fn handle(State(sandbox): State<Arc<Sandbox>>, raw: Bytes) -> Response {
    let req = match gate::accept(&sandbox, &format!("POST {PATH}"), &raw) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    if let Err(a) = req.require(&sandbox, "payment", &["description"]) {
        return a;
    }
    let description = req
        .text("payment", "description")
        .unwrap_or_default()
        .to_owned();
    let refund_id = req
        .text("payment", "merchant_refund_id")
        .map(str::to_owned)
        .filter(|_| {
            let rate = sandbox.answers().ecommpay_refund_id_as_purchase_rate;
            !crate::faults::roll_for(&req.payment_id, rate)
        });
    let Some(purchase) = book::lookup(&sandbox, &req.payment_id) else {
        return req.error(
            StatusCode::BAD_REQUEST,
            codes::NOT_FOUND,
            codes::NOT_FOUND_MESSAGE,
        );
    };
    if purchase.sale.is_none() {
        return req.invalid(&sandbox, "the payment is not a Banks of India purchase");
    }
    if let Some(existing) = purchase.refund.as_ref() {
        let shown = refund_id.as_deref().unwrap_or(&req.payment_id);
        if existing.merchant_refund_id == shown {
            return req.duplicate(&sandbox);
        }
        if existing.op.status == OpStatus::Success {
            return req.invalid(&sandbox, "the payment is refunded already");
        }
    }
    if purchase.op.status != OpStatus::Success {
        let m = format!(
            "a payment in status {} cannot be refunded",
            purchase.op.status.as_str()
        );
        return req.invalid(&sandbox, &m);
    }
    let amount = match &req.body["payment"]["amount"] {
        Value::Null => purchase.op.amount,
        v => match money::gate_minor(v) {
            Some(a)
                if req
                    .text("payment", "currency")
                    .is_none_or(|c| c == purchase.op.currency) =>
            {
                a
            }
            _ => return req.invalid(&sandbox, "payment.amount must be a positive INR amount"),
        },
    };
    if amount < purchase.op.amount {
        return req.invalid(&sandbox, "Banks of India refunds the whole purchase only");
    }
    let mut op = book::operation("refund", amount, &purchase.op.currency, &req.request_id);
    (op.status, op.code, op.message) = if amount > purchase.op.amount {
        (
            OpStatus::Decline,
            codes::REFUND_TOO_LARGE,
            "Refund amount more than init amount",
        )
    } else if description.starts_with("decline") {
        (OpStatus::Decline, codes::GENERAL_DECLINE, "General decline")
    } else {
        (OpStatus::Success, codes::SUCCESS, "Success")
    };
    let refunded = {
        let mut book = sandbox.ecommpay.lock().expect("payments lock");
        op.id = book.next_operation_id();
        let Some(p) = book.get_mut(&req.payment_id) else {
            return req.error(
                StatusCode::BAD_REQUEST,
                codes::NOT_FOUND,
                codes::NOT_FOUND_MESSAGE,
            );
        };
        // Another refund may have won the race since the lookup.
        if p.refund
            .as_ref()
            .is_some_and(|r| r.op.status == OpStatus::Success)
        {
            drop(book);
            return req.invalid(&sandbox, "the payment is refunded already");
        }
        p.refund = Some(Refund {
            merchant_refund_id: refund_id.clone().unwrap_or_else(|| req.payment_id.clone()),
            description: description.clone(),
            op: op.clone(),
        });
        p.description = description;
        p.clone()
    };
    if op.status == OpStatus::Success {
        // Counted by the refund's own id, so that it never adds to the sale's count.
        let key = refund_id.unwrap_or_else(|| format!("refund:{}", req.payment_id));
        sandbox.with_stats(|s| s.executed(&key));
    }
    callbacks::call_back(&sandbox, &refunded);
    req.accepted()
}
