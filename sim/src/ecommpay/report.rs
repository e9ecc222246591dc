//! Callback and status bodies, in "the standard format for callbacks" the documents
//! show: `project_id`, `payment` (id, type, status, date, method, sum, description),
//! `customer`, `operation` (id, type, status, dates, request_id, sum_initial,
//! sum_converted, provider, code, message), `signature` at the root.

use super::book::{OpStatus, Operation, Payment};
use super::signature;
use crate::Sandbox;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

/// A callback tells of one operation; a status answer lists them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Callback,
    Status { with_action: bool },
}

fn operation_json(op: &Operation, provider_id: u64) -> Value {
    let sum = json!({ "amount": op.amount, "currency": op.currency });
    let mut o = json!({
        "id": op.id,
        "type": op.kind,
        "status": op.status.as_str(),
        "date": op.date,
        "created_date": op.created,
        "request_id": op.request_id,
        "sum_initial": sum,
        "sum_converted": sum,
        "code": op.code,
        "message": op.message,
    });
    // The declined refund callback of the document has no `provider`: the refund
    // never reached one.
    if op.code != super::codes::REFUND_TOO_LARGE {
        let provider_payment_id = if op.status == OpStatus::Success {
            format!("{}-{}", provider_id, op.id)
        } else {
            String::new()
        };
        o["provider"] = json!({
            "id": provider_id,
            "payment_id": provider_payment_id,
            "auth_code": "",
        });
    }
    o
}

/// The body about `p`, signed at the root.
pub fn body(sandbox: &Sandbox, p: &Payment, view: View) -> Value {
    let provider_id = if p.method == super::book::HOMEBANK_PAYOUT_METHOD {
        1112
    } else {
        2080
    };
    let refunded = p
        .refund
        .as_ref()
        .is_some_and(|r| r.op.status == OpStatus::Success);
    // "status": "refunded" and "sum": {"amount": 0} after a full refund; a declined
    // refund leaves the purchase "success" with its sum (the refund callbacks).
    let (status, amount) = if refunded {
        ("refunded", 0)
    } else {
        (p.op.status.as_str(), p.op.amount)
    };
    let mut payment = json!({
        "id": p.payment_id,
        "type": p.payment_type,
        "status": status,
        "date": p.refund.as_ref().map_or(&p.op.date, |r| &r.op.date),
        "method": p.method,
        "sum": { "amount": amount, "currency": p.op.currency },
        "description": p.description,
    });
    if let Some(r) = &p.refund {
        payment["merchant_refund_id"] = json!(r.merchant_refund_id);
    }
    let mut body = json!({
        "project_id": p.project_id,
        "payment": payment,
        "customer": p.customer,
    });
    if let Some(account) = &p.account {
        body["account"] = account.clone();
    }
    let main = operation_json(&p.op, provider_id);
    let refund = p
        .refund
        .as_ref()
        .map(|r| operation_json(&r.op, provider_id));
    match view {
        View::Callback => body["operation"] = refund.unwrap_or(main),
        View::Status { .. } => {
            body["operations"] = json!([main].into_iter().chain(refund).collect::<Vec<_>>())
        }
    }
    let with_action = match view {
        View::Callback => true,
        View::Status { with_action } => with_action,
    };
    if let Some(sale) = p
        .sale
        .as_ref()
        .filter(|_| with_action && p.op.status == OpStatus::AwaitingRedirect)
    {
        // "redirect_data": {"body": {...}, "method": "GET", "url": "…"} (the purchase
        // section). An empty `body` is not part of the signature.
        body["redirect_data"] = json!({ "body": {}, "method": "GET", "url": sale.redirect_url });
    }
    signature::sign_root(
        sandbox.ecommpay_secret.expose_secret().as_bytes(),
        &mut body,
    );
    body
}
