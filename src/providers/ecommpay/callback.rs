//! Proving a callback by its signature and reading it (or a status answer) into a
//! payfleet outcome.
//!
//! Outcomes are read from the operation (`operation.type` / `operation.status`), not
//! from `payment.status`: a declined refund leaves `payment.status` at `success`.
//! Empty values are read as absent: ECommPay signs no empty object or array, so anyone
//! may add one to an authentic callback (an unsigned `"redirect_data": {}` once moved a
//! payout to `action_required`), and an empty string says nothing either.

use super::gate::code_text;
use super::signature::Signed;
use crate::contract::IdempotencyKey;
use crate::providers::callback::{Authentic, CallbackVerdict, Refusal, Settlement, Sum};
use crate::state::{Outcome, State};
use serde_json::Value;

/// Proves a callback with the secret keys of the fleet's projects (it is signed with
/// the key of the project it is about) and reads it. ECommPay resends a callback until
/// it is answered 200, so one about a payment payfleet did not make is `NotOurs`.
pub fn verdict<'s>(body: &[u8], mut secrets: impl Iterator<Item = &'s [u8]>) -> CallbackVerdict {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return CallbackVerdict::Refused(Refusal::Malformed("body is not JSON"));
    };
    // Flattened once, whatever the number of keys.
    let authentic =
        Signed::root(&json).is_some_and(|signed| secrets.any(|k| signed.verified_by(k)));
    if !authentic {
        return CallbackVerdict::Refused(Refusal::BadSignature);
    }
    CallbackVerdict::Authentic(authentic_verdict(&json))
}

fn authentic_verdict(json: &Value) -> Authentic {
    let report = match read(json) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "authentic callback that cannot be read");
            return Authentic::Malformed("callback is missing required fields");
        }
    };
    if report.operation_type == "refund" && report.payment_id == report.gate_payment_id {
        // It names no refund command: its purchase's record is not the refund's, and
        // the refund's status query (which finds the purchase's refund) settles it.
        tracing::info!("a refund callback names no refund id: its status query settles it");
        return Authentic::InProgress;
    }
    let Ok(key) = IdempotencyKey::parse(report.payment_id.as_str()) else {
        return Authentic::NotOurs;
    };
    let Some(state) = report.state else {
        return Authentic::InProgress;
    };
    Authentic::Settle(Settlement {
        key,
        state,
        outcome: report.outcome,
        payment_id: report.gate_payment_id,
        sum: report.sum,
        reported_at: reported_at(json),
    })
}

/// When the provider says the operation reached its status (`operation.date`, else
/// `payment.date`, e.g. `2018-09-28T12:04:40+0000`).
fn reported_at(json: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    ["/operation/date", "/payment/date"]
        .iter()
        .find_map(|p| present(json.pointer(p))?.as_str())
        .and_then(|s| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z").ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// What a verified callback says.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The id payfleet gave the payment: `payment.id`, or for a refund
    /// `payment.merchant_refund_id` (the refund command's key).
    pub payment_id: String,
    /// `payment.id`: the id Gate knows the payment by (for a refund, its purchase's).
    pub gate_payment_id: String,
    /// `operation.type`: sale, payout, refund, ...
    pub operation_type: String,
    /// The state this report moves the payment to; `None` while still in progress.
    pub state: Option<State>,
    pub outcome: Outcome,
    /// The operation's money (`operation.sum_initial`, else `payment.sum`).
    pub sum: Option<Sum>,
}

#[derive(Debug, thiserror::Error)]
#[error("callback is missing {0}")]
pub struct Malformed(pub &'static str);

/// `value` unless it carries nothing: null, an empty string, or an object or array with
/// nothing but such values inside (none of which a signature can vouch for).
fn present(value: Option<&Value>) -> Option<&Value> {
    fn meaningful(v: &Value) -> bool {
        match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(items) => items.iter().any(meaningful),
            Value::Object(map) => map.values().any(meaningful),
            Value::Bool(_) | Value::Number(_) => true,
        }
    }
    value.filter(|v| meaningful(v))
}

/// `body[key]`, if it carries anything.
fn field<'a>(body: &'a Value, key: &str) -> Option<&'a Value> {
    present(body.get(key))
}

/// The operation the report is about: `operation`, or the last of `operations` (empty
/// ones skipped).
fn operation(body: &Value) -> Option<&Value> {
    field(body, "operation").or_else(|| {
        field(body, "operations")
            .and_then(Value::as_array)
            .and_then(|ops| ops.iter().rev().find_map(|op| present(Some(op))))
    })
}

/// The money `op` (else its `payment`) names.
fn sum(op: &Value, payment: &Value) -> Option<Sum> {
    let sum = field(op, "sum_initial").or_else(|| field(payment, "sum"))?;
    Some(Sum {
        minor: field(sum, "amount")?.as_u64()?,
        currency: field(sum, "currency")?.as_str()?.to_owned(),
    })
}

pub fn read(body: &Value) -> Result<Report, Malformed> {
    let payment = field(body, "payment").ok_or(Malformed("payment"))?;
    let id = field(payment, "id")
        .and_then(Value::as_str)
        .ok_or(Malformed("payment.id"))?;
    let op = operation(body).ok_or(Malformed("operation"))?;
    let operation_type = field(op, "type")
        .and_then(Value::as_str)
        .ok_or(Malformed("operation.type"))?
        .to_owned();
    // A refund is reported on its purchase; its own id is the merchant's refund id,
    // when Gate echoes it (the purchase's id there names no refund).
    let refund_id = field(payment, "merchant_refund_id")
        .and_then(Value::as_str)
        .filter(|r| operation_type == "refund" && *r != id);
    let payment_id = refund_id.unwrap_or(id).to_owned();
    let op_status = field(op, "status")
        .and_then(Value::as_str)
        .ok_or(Malformed("operation.status"))?;
    let code = field(op, "code").map(code_text);
    let message = field(op, "message")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let redirect = field(body, "redirect_data").filter(|r| r.is_object());
    let state = match op_status {
        "success" => Some(State::Succeeded),
        "decline" | "error" | "expired" | "internal error" => Some(State::Declined),
        // Still open, and the customer must be sent somewhere (purchases with redirect).
        _ if redirect.is_some() => Some(State::ActionRequired),
        _ => None,
    };
    Ok(Report {
        payment_id,
        gate_payment_id: id.to_owned(),
        operation_type,
        state,
        outcome: Outcome {
            code,
            message,
            action: redirect.cloned(),
            ..Default::default()
        },
        sum: sum(op, payment),
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
        let kzt = Sum {
            minor: 200000,
            currency: "KZT".into(),
        };
        assert_eq!(r.sum, Some(kzt));
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
    fn a_redirect_asks_for_action_and_carries_it() {
        let body = json!({
            "payment": {"id": "s-1", "type": "purchase", "status": "awaiting redirect result"},
            "operation": {"type": "sale", "status": "awaiting redirect result", "code": "0"},
            "redirect_data": {"url": "https://bank.example/pay", "method": "GET", "body": {}}
        });
        let r = read(&body).unwrap();
        assert_eq!(r.state, Some(State::ActionRequired));
        assert_eq!(r.outcome.action.unwrap()["url"], "https://bank.example/pay");
    }

    #[test]
    fn a_refund_callback_names_the_refund_not_the_purchase() {
        let body = json!({
            "payment": {"id": "sale-1", "type": "purchase", "status": "refunded", "merchant_refund_id": "rf-1"},
            "operation": {"type": "refund", "status": "success", "code": "0"}
        });
        let r = read(&body).unwrap();
        assert_eq!(
            (r.payment_id.as_str(), r.state),
            ("rf-1", Some(State::Succeeded))
        );
        let sale = json!({
            "payment": {"id": "sale-1", "merchant_refund_id": "rf-1"},
            "operation": {"type": "sale", "status": "success"}
        });
        assert_eq!(read(&sale).unwrap().payment_id, "sale-1");
    }

    /// As the document's refund callbacks show it: `merchant_refund_id` is the
    /// purchase's id. No refund command is named, so none is settled by it (nor the
    /// purchase): the refund's status query settles the refund.
    #[test]
    fn a_refund_callback_naming_only_its_purchase_settles_nothing() {
        for named in [json!("TEST_554862"), json!(null)] {
            let body = json!({
                "payment": {"id": "TEST_554862", "type": "purchase", "status": "refunded",
                            "merchant_refund_id": named},
                "operation": {"type": "refund", "status": "success", "code": "0"}
            });
            assert_eq!(read(&body).unwrap().payment_id, "TEST_554862");
            assert_eq!(authentic_verdict(&body), Authentic::InProgress, "{named}");
        }
    }

    #[test]
    fn processing_is_not_final_and_missing_fields_are_named() {
        let body = json!({"payment": {"id": "p"}, "operations": [{"type": "payout", "status": "processing"}]});
        assert_eq!(read(&body).unwrap().state, None);
        let e = read(&json!({"payment": {"status": "success"}})).unwrap_err();
        assert_eq!(e.0, "payment.id");
    }

    #[test]
    fn empty_values_carry_no_meaning() {
        let body = json!({
            "payment": {"id": "po-1", "sum": {}},
            "operation": {"type": "payout", "status": "processing", "code": "", "message": "",
                          "sum_initial": {"amount": 100, "currency": ""}},
            "redirect_data": {"body": {}, "url": ""}
        });
        let r = read(&body).unwrap();
        assert_eq!((r.state, r.outcome.action, r.sum), (None, None, None));
        assert_eq!((r.outcome.code, r.outcome.message), (None, None));
        let empty_operation = json!({
            "payment": {"id": "po-1"},
            "operation": {},
            "operations": [{"type": "payout", "status": "success"}, {}]
        });
        assert_eq!(
            read(&empty_operation).unwrap().state,
            Some(State::Succeeded)
        );
        let empty_id = json!({"payment": {"id": "", "status": "success"}, "operation": {"type": "payout", "status": "success"}});
        assert_eq!(read(&empty_id).unwrap_err().0, "payment.id");
    }

    #[test]
    fn an_unsigned_empty_redirect_does_not_move_an_authentic_payout() {
        let mut body: Value = serde_json::from_slice(&signed(
            b"main",
            json!({"payment": {"id": "po-1"}, "operation": {"type": "payout", "status": "processing"}}),
        ))
        .unwrap();
        body["redirect_data"] = json!({});
        let body = serde_json::to_vec(&body).unwrap();
        assert_eq!(
            judge(&body),
            CallbackVerdict::Authentic(Authentic::InProgress)
        );
    }

    fn signed(secret: &[u8], mut body: Value) -> Vec<u8> {
        super::super::signature::sign_root(secret, &mut body);
        serde_json::to_vec(&body).unwrap()
    }

    fn judge(body: &[u8]) -> CallbackVerdict {
        verdict(
            body,
            [b"main".as_slice(), b"account".as_slice()].into_iter(),
        )
    }

    #[test]
    fn a_callback_signed_by_any_project_of_the_fleet_settles() {
        let body = signed(
            b"account",
            json!({
                "payment": {"id": "po-1"},
                "operation": {"type": "payout", "status": "success", "code": "0",
                              "date": "2018-09-28T12:04:40+0000"}
            }),
        );
        let CallbackVerdict::Authentic(Authentic::Settle(s)) = judge(&body) else {
            panic!("not settled: {:?}", judge(&body));
        };
        assert_eq!((s.key.as_str(), s.state), ("po-1", State::Succeeded));
        assert_eq!(
            s.reported_at.unwrap().to_rfc3339(),
            "2018-09-28T12:04:40+00:00"
        );
    }

    #[test]
    fn forged_unreadable_foreign_and_unfinished_callbacks_are_told_apart() {
        assert_eq!(
            judge(b"not json"),
            CallbackVerdict::Refused(Refusal::Malformed("body is not JSON"))
        );
        let payout = json!({"payment": {"id": "po-1"}, "operation": {"type": "payout", "status": "success"}});
        assert_eq!(
            judge(&signed(b"stranger", payout)),
            CallbackVerdict::Refused(Refusal::BadSignature)
        );
        assert!(matches!(
            judge(&signed(b"main", json!({"payment": {"id": "po-1"}}))),
            CallbackVerdict::Authentic(Authentic::Malformed(_))
        ));
        let foreign = json!({"payment": {"id": "not a key"}, "operation": {"type": "payout", "status": "success"}});
        assert_eq!(
            judge(&signed(b"main", foreign)),
            CallbackVerdict::Authentic(Authentic::NotOurs)
        );
        let open = json!({"payment": {"id": "po-1"}, "operation": {"type": "payout", "status": "processing"}});
        assert_eq!(
            judge(&signed(b"main", open)),
            CallbackVerdict::Authentic(Authentic::InProgress)
        );
    }
}
