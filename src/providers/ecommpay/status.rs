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
/// answers too: only the one carrying this command's id is this refund.
pub async fn query_refund(
    gate: &Gate,
    payment_id: &str,
    merchant_refund_id: &str,
) -> Result<Status, ProviderError> {
    let (http, body) = gate
        .post(PATH, json!({ "general": gate.general(payment_id) }))
        .await?;
    let ours = body
        .pointer("/payment/merchant_refund_id")
        .and_then(Value::as_str)
        == Some(merchant_refund_id);
    // `read` checks the signature first, so `ours` counts only on a signed answer.
    Ok(only_ours(read(gate.secret(), http, body, "refund")?, ours))
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
        // A payment that has no refund yet: the refund never reached Gate.
        return Ok(if operation_type == "refund" {
            Status::NotFound
        } else {
            Status::Pending
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
    }
}
