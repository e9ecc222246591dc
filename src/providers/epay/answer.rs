//! Reading epay's answer to a payment request (Google Pay, P2P transfer, 3-D Secure
//! confirmation) in payfleet's terms.

use super::api::{Answer, code_text};
use super::codes;
use crate::providers::{ProviderError, Submission};
use crate::state::{Outcome, State};
use serde_json::{Value, json};

/// `term_url`: where the customer's bank posts the 3-D Secure result (the merchant's).
pub fn read((http, body): Answer, term_url: &str) -> Result<Submission, ProviderError> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    if let Some(s3) = three_ds(&body) {
        let field = |k: &str| named(s3, k).and_then(Value::as_str).unwrap_or_default();
        if field("action").is_empty() || field("paReq").is_empty() || field("md").is_empty() {
            return Err(ProviderError::Unknown(
                "epay asked for 3-D Secure without action, paReq or md".into(),
            ));
        }
        return Ok(Submission::ActionRequired(Outcome {
            code: Some("3ds".into()),
            message: Some("3-D Secure verification required".into()),
            action: Some(json!({
                "kind": "3ds",
                "action": field("action"),
                "PaReq": field("paReq"),
                "MD": field("md"),
                "TermUrl": term_url,
                "ID": text("id"),
            })),
            ..Default::default()
        }));
    }
    let code = body.get("code").map(code_text).unwrap_or_default();
    let message = text("message").to_owned();
    if !code.is_empty() && code != codes::SUCCESS.to_string() {
        // "Already exists" is no decline: epay has the payment.
        if code == codes::DUPLICATE_INVOICE.to_string()
            || message.to_lowercase().contains("already exists")
        {
            return Err(ProviderError::AlreadyExists);
        }
        return Err(ProviderError::Refused { code, message });
    }
    if http >= 300 {
        return Err(ProviderError::Refused {
            code: http.to_string(),
            message: if message.is_empty() {
                "refused".into()
            } else {
                message
            },
        });
    }
    match text("status") {
        "AUTH" | "CHARGE" => Ok(Submission::Final {
            state: State::Succeeded,
            outcome: Outcome {
                code: Some(codes::SUCCESS.to_string()),
                message: Some(text("status").to_owned()),
                ..Default::default()
            },
        }),
        // Taken, but not finished: postLink or check-status tells the outcome.
        _ => Ok(Submission::Accepted),
    }
}

/// Where the answer carries the 3-D Secure parameters, if it asks for it. The P2P
/// document says only that "the received parameters paReq, md, action are used" (and
/// writes `MD` in its form): in a `secure3D` object, or beside the answer's other
/// fields, in any letter case.
fn three_ds(body: &Value) -> Option<&Value> {
    named(body, "secure3D")
        .filter(|v| v.is_object())
        .or_else(|| (named(body, "paReq").is_some() || named(body, "md").is_some()).then_some(body))
}

/// `object[name]`, its letter case aside.
fn named<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object
        .as_object()?
        .iter()
        .find_map(|(k, v)| k.eq_ignore_ascii_case(name).then_some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let ok =
            json!({"id": "a9e1", "code": 0, "status": "AUTH", "senderCardPAN": "4003********9821"});
        assert!(matches!(
            read((200, ok), "t"),
            Ok(Submission::Final {
                state: State::Succeeded,
                ..
            })
        ));
        let declined = json!({"code": 487, "message": "Not permitted to merchant", "invoiceId": "8161284658525"});
        assert_eq!(
            read((400, declined), "t"),
            Err(ProviderError::Refused {
                code: "487".into(),
                message: "Not permitted to merchant".into()
            })
        );
        let dup = json!({"code": 488, "message": "Invoice already exists", "invoiceId": "100000000001",
            "id": "", "reference": "", "accountId": ""});
        assert_eq!(read((400, dup), "t"), Err(ProviderError::AlreadyExists));
        let s3 = json!({"id": "x", "status": "NEW", "secure3D": {"action": "https://acs", "paReq": "p", "md": "m"}});
        match read((200, s3), "https://term") {
            Ok(Submission::ActionRequired(o)) => {
                let a = o.action.unwrap();
                assert_eq!(
                    (
                        a["PaReq"].as_str(),
                        a["MD"].as_str(),
                        a["TermUrl"].as_str(),
                        a["ID"].as_str()
                    ),
                    (Some("p"), Some("m"), Some("https://term"), Some("x"))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// The document names the parameters, not where they are: beside the other fields,
    /// or spelt as its form spells them, they still send the customer to the bank.
    #[test]
    fn a_3ds_request_is_read_wherever_and_however_its_parameters_are_spelt() {
        for body in [
            json!({"id": "x", "status": "NEW", "action": "https://acs", "paReq": "p", "md": "m"}),
            json!({"id": "x", "secure3d": {"Action": "https://acs", "PaReq": "p", "MD": "m"}}),
        ] {
            let Ok(Submission::ActionRequired(o)) = read((200, body.clone()), "t") else {
                panic!("3-D Secure: {body}")
            };
            let a = o.action.unwrap();
            assert_eq!(
                (a["PaReq"].as_str(), a["MD"].as_str()),
                (Some("p"), Some("m"))
            );
        }
        let partial = json!({"id": "x", "status": "NEW", "md": "m"});
        assert!(matches!(
            read((200, partial), "t"),
            Err(ProviderError::Unknown(_))
        ));
    }
}
