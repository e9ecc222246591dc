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
    if body.get("status").and_then(Value::as_str) == Some("error") {
        let answer: super::gate::GateAnswer = serde_json::from_value(body)
            .map_err(|e| ProviderError::Unknown(format!("status answer: {e}")))?;
        if answer.code.as_ref().map(super::gate::code_text).as_deref()
            == Some(codes::PAYMENT_NOT_FOUND)
        {
            return Ok(Status::NotFound);
        }
        return Err(super::gate::refusal(&answer));
    }
    if !signature::verify_root(gate.secret(), &body) {
        return Err(ProviderError::Unknown(format!(
            "status answer (HTTP {http}) has a wrong signature"
        )));
    }
    let report =
        callback::read(&body).map_err(|e| ProviderError::Unknown(format!("status answer: {e}")))?;
    if report.operation_type != operation_type {
        return Ok(Status::Pending);
    }
    Ok(match report.state {
        Some(state @ (State::Succeeded | State::Declined)) => Status::Final {
            state,
            outcome: report.outcome,
        },
        _ => Status::Pending,
    })
}
