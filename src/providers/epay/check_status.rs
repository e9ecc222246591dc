//! `GET {status}/check-status/payment/transaction/:invoiceid`: what epay knows of a
//! transaction. Used on unknown outcomes, by the reconciler, and by the gateway to
//! confirm every postLink before anything is published. resultCode 102 says "not found,
//! try again later or check transaction type (payment/p2p)": P2P transfers are found at
//! `epay.p2p_status_path`, so a 102 is asked of that path before it is concluded.

use super::Epay;
use super::api::{Api, code_text};
use super::codes::result;
use crate::providers::{ProviderError, Status};
use crate::state::{Outcome, State};
use serde_json::Value;

pub const PATH: &str = "/check-status/payment/transaction/";

pub async fn query(epay: &Epay, invoice_id: &str) -> Result<Status, ProviderError> {
    // A status request is not a transaction: a token of the terminal, without invoice.
    let token =
        super::token::fetch(&epay.api, &epay.metrics, super::codes::SCOPE_PAYMENT, None).await?;
    let settings = &epay.api.settings;
    let mut answer = Status::NotFound;
    for path in [PATH, settings.p2p_status_path.as_str()] {
        let url = Api::url(&settings.status_url, &format!("{path}{invoice_id}"));
        let (http, body) = epay.api.get(url, &token.access).await?;
        if http == 401 || http == 403 {
            return Err(ProviderError::Unknown(format!(
                "check-status refused the token (HTTP {http})"
            )));
        }
        answer = read(&body)?;
        if answer != Status::NotFound {
            break;
        }
    }
    Ok(answer)
}

/// Maps an answer: `resultCode` first, then the transaction's `statusName`.
pub fn read(body: &Value) -> Result<Status, ProviderError> {
    let code = body.get("resultCode").map(code_text).unwrap_or_default();
    let message = body
        .get("resultMessage")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let refused = |why: &str| ProviderError::Refused {
        code: format!("check-status:{code}"),
        message: format!("{why}: {message}"),
    };
    match code.as_str() {
        result::SUCCESS => {}
        // "Unsuccessful transaction".
        result::REJECT => {
            return Ok(Status::Final {
                state: State::Declined,
                outcome: outcome(&code, &message),
            });
        }
        result::NOT_FOUND => return Ok(Status::NotFound),
        // "Try again or contact support": ask again later.
        result::TRY_AGAIN => {
            return Err(ProviderError::Unknown(format!(
                "check-status {code}: try again later"
            )));
        }
        // "In progress": ask again later.
        result::IN_PROGRESS => return Ok(Status::Pending),
        // Our token or terminal is wrong: configuration, not this payment.
        result::NO_TERMINAL_IN_TOKEN => return Err(refused("terminal absent in token")),
        result::WRONG_TERMINAL => return Err(refused("incorrect terminal id")),
        // Not described by the document: nothing can be concluded, ask again later.
        result::UNDESCRIBED_105 | result::UNDESCRIBED_109 => {
            return Err(ProviderError::Unknown(format!(
                "check-status {code} ({message}) is not described: asking again later"
            )));
        }
        other => {
            return Err(ProviderError::Unknown(format!(
                "check-status answered an unknown resultCode {other:?}"
            )));
        }
    }
    let tx = &body["transaction"];
    let status_name = tx
        .get("statusName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let state = match status_name {
        // Blocked or debited: the payment went through.
        "AUTH" | "CHARGE" => State::Succeeded,
        // Debited, then refunded by a later operation: this payment itself was executed.
        "REFUND" => State::Succeeded,
        // Unblocked (by the merchant or, on expiry, the issuer): no money moved.
        "CANCEL" | "CANCEL_OLD" => State::Declined,
        "FAILED" | "REJECT" | "3D" => State::Declined,
        // Created, intermediate: it may still change.
        "NEW" => return Ok(Status::Pending),
        other => {
            return Err(ProviderError::Unknown(format!(
                "check-status answered an unknown statusName {other:?}"
            )));
        }
    };
    let mut out = outcome(status_name, &message);
    if state == State::Declined {
        if let Some(reason_code) = tx
            .get("reasonCode")
            .map(code_text)
            .filter(|c| !c.is_empty())
        {
            out.code = Some(reason_code);
        }
        out.message = Some(format!(
            "{status_name}: {}",
            tx.get("reason").and_then(Value::as_str).unwrap_or_default()
        ));
    }
    Ok(Status::Final {
        state,
        outcome: out,
    })
}

fn outcome(code: &str, message: &str) -> Outcome {
    Outcome {
        code: Some(code.to_owned()),
        message: Some(message.to_owned()),
        ..Default::default()
    }
}
