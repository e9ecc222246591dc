//! Reading a signed callback (or status answer) into a payfleet outcome.
//!
//! Outcomes are read from the operation (`operation.type` / `operation.status`), not
//! from `payment.status`: a declined refund leaves `payment.status` at `success`.

use super::gate::code_text;
use crate::state::{Outcome, State};
use serde_json::Value;

/// What a verified callback says.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// `payment.id`: the id payfleet gave the payment.
    pub payment_id: String,
    /// `operation.type`: sale, payout, refund, ...
    pub operation_type: String,
    /// The state this report moves the payment to; `None` while still in progress.
    pub state: Option<State>,
    pub outcome: Outcome,
    pub amount_minor: Option<u64>,
    pub currency: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("callback is missing {0}")]
pub struct Malformed(pub &'static str);

/// The operation the report is about: `operation`, or the last of `operations`.
fn operation(body: &Value) -> Option<&Value> {
    body.get("operation").or_else(|| {
        body.get("operations")
            .and_then(Value::as_array)
            .and_then(|ops| ops.last())
    })
}

pub fn read(body: &Value) -> Result<Report, Malformed> {
    let payment = body.get("payment").ok_or(Malformed("payment"))?;
    let payment_id = payment
        .get("id")
        .and_then(Value::as_str)
        .ok_or(Malformed("payment.id"))?
        .to_owned();
    let op = operation(body).ok_or(Malformed("operation"))?;
    let operation_type = op
        .get("type")
        .and_then(Value::as_str)
        .ok_or(Malformed("operation.type"))?
        .to_owned();
    let op_status = op
        .get("status")
        .and_then(Value::as_str)
        .ok_or(Malformed("operation.status"))?;
    let code = op.get("code").map(code_text);
    let message = op.get("message").and_then(Value::as_str).map(str::to_owned);
    let state = match op_status {
        "success" => Some(State::Succeeded),
        "decline" | "error" | "expired" | "internal error" => Some(State::Declined),
        _ => None,
    };
    let sum = op.get("sum_initial").or_else(|| payment.get("sum"));
    Ok(Report {
        payment_id,
        operation_type,
        state,
        outcome: Outcome {
            code,
            message,
            ..Default::default()
        },
        amount_minor: sum.and_then(|s| s.get("amount")).and_then(Value::as_u64),
        currency: sum
            .and_then(|s| s.get("currency"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_declined_payout_callback_reads_from_the_operation() {
        let body = json!({
            "project_id": 238,
            "payment": {"id": "HomeBankPayout2222233", "type": "payout", "status": "decline"},
            "operation": {"type": "payout", "status": "decline", "code": "20602", "message": "Time-out",
                          "sum_initial": {"amount": 200000, "currency": "KZT"}}
        });
        let r = read(&body).unwrap();
        assert_eq!(r.state, Some(State::Declined));
        assert_eq!(r.outcome.code.as_deref(), Some("20602"));
        assert_eq!(r.amount_minor, Some(200000));
    }

    #[test]
    fn a_declined_refund_is_declined_although_the_payment_succeeded() {
        let body = json!({
            "payment": {"id": "p", "type": "purchase", "status": "success"},
            "operation": {"type": "refund", "status": "decline", "code": "3283"}
        });
        assert_eq!(read(&body).unwrap().state, Some(State::Declined));
    }

    #[test]
    fn processing_is_not_final_and_missing_fields_are_named() {
        let body = json!({"payment": {"id": "p"}, "operations": [{"type": "payout", "status": "processing"}]});
        assert_eq!(read(&body).unwrap().state, None);
        let e = read(&json!({"payment": {}})).unwrap_err();
        assert_eq!(e.0, "payment.id");
    }
}
