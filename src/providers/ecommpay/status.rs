//! Payment status request: `POST /v2/payment/status`, signed `general.project_id` and
//! `general.payment_id`. Gate answers it no earlier than 10 s after the payment request.

use super::{Gate, callback, codes, signature};
use crate::providers::{ProviderError, Status};
use crate::state::State;
use serde_json::{Value, json};

pub const PATH: &str = "/v2/payment/status";

pub async fn query(
    gate: &Gate,
    payment_id: &str,
    operation_type: &str,
) -> Result<Status, ProviderError> {
    let (http, body) = gate
        .post(PATH, json!({ "general": gate.general(payment_id) }))
        .await?;
    read(gate.secret(), http, body, operation_type)
}

/// The status of the refund a command sent as `merchant_refund_id`. Gate knows a refund
/// by its purchase's payment id, so a refund another command made of the same purchase
/// answers too: one carrying another command's id is not this refund. The document's
/// refund request has no `merchant_refund_id`, and its callbacks show the purchase's id
/// there: a Gate that does not echo ours names no refund, and the purchase's latest
/// refund is taken as this one (full refunds only: there is one to succeed).
pub async fn query_refund(
    gate: &Gate,
    payment_id: &str,
    merchant_refund_id: &str,
) -> Result<Status, ProviderError> {
    let (http, body) = gate
        .post(PATH, json!({ "general": gate.general(payment_id) }))
        .await?;
    let echoed = body
        .pointer("/payment/merchant_refund_id")
        .and_then(Value::as_str);
    let ours = names_ours(echoed, payment_id, merchant_refund_id);
    // `read` checks the signature first, so `ours` counts only on a signed answer.
    Ok(only_ours(read(gate.secret(), http, body, "refund")?, ours))
}

/// Whether the refund id a purchase's answer shows (`echoed`) may be this refund's: it
/// is, or it names none (absent, empty, or the purchase's own id).
fn names_ours(echoed: Option<&str>, purchase_id: &str, merchant_refund_id: &str) -> bool {
    match echoed.filter(|id| !id.is_empty() && *id != purchase_id) {
        Some(id) => id == merchant_refund_id,
        None => true,
    }
}

fn only_ours(status: Status, ours: bool) -> Status {
    if ours { status } else { Status::NotFound }
}

/// Reads a status answer (HTTP status and JSON body) about `operation_type`.
fn read(
    secret: &[u8],
    http: u16,
    body: Value,
    operation_type: &str,
) -> Result<Status, ProviderError> {
    // "Not found" carries no payment data, so it may come unsigned, and as HTTP 400, 404
    // or 200: its code alone says it.
    if body.get("status").and_then(Value::as_str) == Some("error") {
        let answer: super::gate::GateAnswer = serde_json::from_value(body)
            .map_err(|e| ProviderError::Unknown(format!("status answer: {e}")))?;
        if answer.code.as_ref().map(super::gate::code_text).as_deref() == Some(codes::NOT_FOUND) {
            return Ok(Status::NotFound);
        }
        return Err(super::gate::refusal(&answer));
    }
    if !signature::verify_root(secret, &body) {
        return Err(ProviderError::Unknown(format!(
            "status answer (HTTP {http}) has a wrong signature"
        )));
    }
    let Some(view) = about(&body, operation_type) else {
        return Ok(if operation_type == "refund" {
            // A payment that has no refund yet: the refund never reached Gate.
            Status::NotFound
        } else {
            by_payment_status(&body)
        });
    };
    let report =
        callback::read(&view).map_err(|e| ProviderError::Unknown(format!("status answer: {e}")))?;
    Ok(match report.state {
        Some(state @ (State::Succeeded | State::Declined)) => Status::Final {
            state,
            outcome: report.outcome,
        },
        Some(State::ActionRequired) => Status::ActionRequired(report.outcome),
        _ => Status::Pending,
    })
}

/// An answer that lists no operation of the payment's kind (the status answer is not
/// in the documents): the payment's own final status, `success` or `decline`, settles
/// it; anything else is still open. Never for a refund, whose `payment` is its purchase.
fn by_payment_status(body: &Value) -> Status {
    let status = body.pointer("/payment/status").and_then(Value::as_str);
    let state = match status {
        Some("success") => State::Succeeded,
        Some("decline") => State::Declined,
        _ => return Status::Pending,
    };
    Status::Final {
        state,
        outcome: crate::state::Outcome {
            message: status.map(str::to_owned),
            ..Default::default()
        },
    }
}

/// The answer narrowed to the latest operation of `operation_type` (a purchase's
/// answer lists its sale and then its refund); `None` when it has none.
fn about(body: &Value, operation_type: &str) -> Option<Value> {
    let of_type = |op: &&Value| op.get("type").and_then(Value::as_str) == Some(operation_type);
    let op = match body.get("operations").and_then(Value::as_array) {
        Some(ops) => ops.iter().rev().find(of_type)?,
        None => body.get("operation").filter(of_type)?,
    };
    let mut view = body.clone();
    let map = view.as_object_mut()?;
    map.remove("operations");
    map.insert("operation".into(), op.clone());
    Some(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purchase_answer_is_read_for_the_operation_asked_about() {
        let body = json!({
            "payment": {"id": "s-1", "status": "success", "merchant_refund_id": "rf-1"},
            "operations": [
                {"type": "sale", "status": "success", "code": "0"},
                {"type": "refund", "status": "decline", "code": "3283"}
            ]
        });
        let refund = about(&body, "refund").unwrap();
        assert_eq!(refund["operation"]["code"], "3283");
        assert_eq!(
            about(&body, "sale").unwrap()["operation"]["status"],
            "success"
        );
        assert!(about(&body, "payout").is_none());
    }

    /// Without an operation of its kind, a payout's answer is read by the payment's
    /// own status, where it is final; a refund's never is (that is its purchase's).
    #[test]
    fn an_answer_without_operations_is_read_by_the_payments_status() {
        let secret = b"key";
        let answer = |status: &str| {
            let mut body = json!({"project_id": 1, "payment": {"id": "p-1", "type": "payout",
                "status": status}});
            signature::sign_root(secret, &mut body);
            body
        };
        let state = |status, kind| match read(secret, 200, answer(status), kind) {
            Ok(Status::Final { state, .. }) => Some(state),
            Ok(Status::Pending) => None,
            other => panic!("{other:?}"),
        };
        assert_eq!(state("success", "payout"), Some(State::Succeeded));
        assert_eq!(state("decline", "payout"), Some(State::Declined));
        assert_eq!(state("processing", "payout"), None);
        assert_eq!(
            read(secret, 200, answer("success"), "refund"),
            Ok(Status::NotFound)
        );
    }

    /// Gate's answer for a payment it never registered: 3061 "Transaction not found",
    /// unsigned (it carries no payment data) or signed, as HTTP 400, 404 or 200.
    #[test]
    fn transaction_not_found_is_not_found_in_every_form() {
        let secret = b"key";
        let unsigned = json!({"status": "error", "request_id": "r", "project_id": 198,
            "payment_id": "p-1", "code": "3061", "message": "Transaction not found"});
        let mut signed = unsigned.clone();
        signature::sign_root(secret, &mut signed);
        for body in [unsigned, signed] {
            for http in [400, 404, 200] {
                assert_eq!(
                    read(secret, http, body.clone(), "payout"),
                    Ok(Status::NotFound),
                    "HTTP {http}: {body}"
                );
            }
        }
        let numeric = json!({"status": "error", "code": 3061, "message": "Transaction not found"});
        assert_eq!(read(secret, 400, numeric, "payout"), Ok(Status::NotFound));
    }

    #[test]
    fn a_refund_another_command_made_is_not_this_one() {
        let paid = || Status::Final {
            state: State::Succeeded,
            outcome: Default::default(),
        };
        assert_eq!(super::only_ours(paid(), true), paid());
        assert_eq!(super::only_ours(paid(), false), Status::NotFound);
        assert_eq!(super::only_ours(Status::Pending, false), Status::NotFound);
        assert!(!super::names_ours(Some("rf-other"), "s-1", "rf-1"));
    }

    /// The document's refund callbacks show the purchase's id as `merchant_refund_id`:
    /// a Gate that reports so, or not at all, names no other refund.
    #[test]
    fn a_refund_named_by_its_purchase_or_not_at_all_is_this_one() {
        assert!(super::names_ours(Some("rf-1"), "s-1", "rf-1"));
        assert!(super::names_ours(Some("s-1"), "s-1", "rf-1"));
        assert!(super::names_ours(Some(""), "s-1", "rf-1"));
        assert!(super::names_ours(None, "s-1", "rf-1"));
    }
}
