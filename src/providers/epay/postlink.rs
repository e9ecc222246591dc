//! epay's postLink / failurePostLink. epay signs nothing, so a postLink is proven by the
//! `secret_hash` payfleet gave its transaction's token request (compared in constant
//! time), and its outcome is never taken from the postLink itself: it is asked of
//! check-status, and only a final status is applied. Once its record is final, a
//! replayed postLink is answered from the record: no token, no check-status call.

use super::{Epay, check_status, invoice};
use crate::contract::IdempotencyKey;
use crate::providers::Status;
use crate::providers::callback::{Authentic, CallbackVerdict, Refusal, Settlement};
use crate::state::StateStore;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// What a postLink claims before it is proven: its invoice id and the secret_hash it
/// echoes (kept secret: it proves the postLink, so it never reaches a log).
pub struct Claim {
    pub invoice_id: String,
    secret_hash: SecretString,
}

impl Claim {
    /// Reads a postLink body; both fields must be non-empty strings. Pure, so the fuzz
    /// targets and the corpus replay check it without Redis.
    pub fn read(body: &[u8]) -> Result<Claim, Refusal> {
        let Ok(json) = serde_json::from_slice::<Value>(body) else {
            return Err(Refusal::Malformed("body is not JSON"));
        };
        let field = |names: &[&str], read: fn(&Value) -> Option<String>| {
            names
                .iter()
                .find_map(|n| json.get(*n).and_then(read))
                .unwrap_or_default()
        };
        let invoice_id = field(&["invoiceId", "invoiceID", "invoice_id"], invoice_text);
        let secret_hash = field(&["secret_hash", "secretHash"], |v| {
            v.as_str().map(str::to_owned)
        });
        if invoice_id.is_empty() || secret_hash.is_empty() {
            return Err(Refusal::Malformed("invoiceId and secret_hash are required"));
        }
        Ok(Claim {
            invoice_id,
            secret_hash: secret_hash.into(),
        })
    }

    /// Whether it echoes `expected`, the secret_hash its transaction was given.
    pub fn proven_by(&self, expected: &SecretString) -> bool {
        invoice::secret_matches(expected, self.secret_hash.expose_secret())
    }
}

/// An invoice id as a postLink may carry it: text, or a number read as its digits (the
/// documents show no postLink, and an invoice id is "6 to 15 digits"; payfleet's never
/// start with 0).
pub fn invoice_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

pub async fn verdict(epay: &Epay, body: &[u8], records: &StateStore) -> CallbackVerdict {
    let claim = match Claim::read(body) {
        Ok(claim) => claim,
        Err(refusal) => return CallbackVerdict::Refused(refusal),
    };
    let invoice_id = claim.invoice_id.clone();
    let (key, expected) = match epay.invoices.find(&invoice_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return CallbackVerdict::Refused(Refusal::UnknownPayment),
        Err(e) => {
            return CallbackVerdict::Unchecked(format!("looking invoice {invoice_id} up: {e}"));
        }
    };
    if !claim.proven_by(&expected) {
        tracing::warn!(invoice_id, "postLink with a wrong secret_hash refused");
        return CallbackVerdict::Refused(Refusal::WrongSecret);
    }
    let Ok(key) = IdempotencyKey::parse(key) else {
        return CallbackVerdict::Refused(Refusal::UnknownPayment);
    };
    let settle = |key, state, outcome, payment_id| {
        Authentic::Settle(Settlement {
            key,
            state,
            outcome,
            payment_id,
            sum: None,
            reported_at: None,
        })
    };
    match records.record(&key).await {
        // Settling what is recorded only makes sure its event is out.
        Ok(Some(rec)) if rec.state.is_terminal() => {
            let outcome = rec.outcome.unwrap_or_default();
            return CallbackVerdict::Authentic(settle(key, rec.state, outcome, invoice_id));
        }
        Ok(_) => {}
        Err(e) => return CallbackVerdict::Unchecked(format!("reading the record of {key}: {e}")),
    }
    // The postLink only says "look": check-status says what happened.
    CallbackVerdict::Authentic(match check_status::query(epay, &invoice_id).await {
        Ok(Status::Final { state, outcome }) => settle(key, state, outcome, invoice_id),
        Ok(_) => Authentic::InProgress,
        Err(e) => Authentic::Unconfirmed(format!("check-status of invoice {invoice_id}: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn a_claim_is_read_by_either_spelling_and_proven_only_by_its_secret() {
        let claim = Claim::read(br#"{"invoiceID": "000001", "secretHash": "s3"}"#).unwrap();
        assert_eq!(claim.invoice_id, "000001");
        assert!(claim.proven_by(&secret("s3")));
        for wrong in ["s", "s33", "S3", ""] {
            assert!(!claim.proven_by(&secret(wrong)), "{wrong}");
        }
    }

    #[test]
    fn a_claim_without_both_fields_is_malformed() {
        for body in [
            &br#"{"invoiceId": "1"}"#[..],
            br#"{"invoiceId": "1", "secret_hash": ""}"#,
            br#"{"invoiceId": 1.5, "secret_hash": "s"}"#,
            b"not json",
        ] {
            assert!(matches!(Claim::read(body), Err(Refusal::Malformed(_))));
        }
        let numeric = Claim::read(br#"{"invoiceId": 123456789012345, "secret_hash": "s"}"#);
        assert_eq!(numeric.unwrap().invoice_id, "123456789012345");
    }
}
