//! epay's postLink reading (`payfleet::providers::epay::postlink::Claim`) on any body.
//! The input's first line is the secret_hash the transaction was given; the rest is
//! the postLink body. A claim is proven only by a non-empty secret the body echoes
//! exactly in its `secret_hash` (or `secretHash`) field, always by that one, and it
//! names the invoice the body names (as text, or a number's digits).

use payfleet::providers::callback::Refusal;
use payfleet::providers::epay::postlink::{self, Claim};
use secrecy::SecretString;
use serde_json::Value;

pub fn check(data: &[u8]) {
    let (secret, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let secret = String::from_utf8_lossy(secret).into_owned();
    let claim = match Claim::read(body) {
        Ok(claim) => claim,
        Err(Refusal::Malformed(_)) => return,
        Err(other) => panic!("reading alone refuses only malformed bodies: {other:?}"),
    };
    let json: Value = serde_json::from_slice(body).expect("a claim was read, so it is JSON");
    let named = |fields: &[&str]| -> Vec<&str> {
        fields
            .iter()
            .filter_map(|f| json.get(*f)?.as_str())
            .collect()
    };
    assert!(!claim.invoice_id.is_empty());
    let invoices: Vec<String> = ["invoiceId", "invoiceID", "invoice_id"]
        .iter()
        .filter_map(|f| postlink::invoice_text(json.get(*f)?))
        .collect();
    assert!(invoices.contains(&claim.invoice_id));
    let echoed = named(&["secret_hash", "secretHash"]);
    let skipped: String = secret.chars().skip(1).collect();
    for candidate in [secret.clone(), format!("{secret}x"), skipped, String::new()] {
        if claim.proven_by(&SecretString::from(candidate.clone())) {
            assert!(!candidate.is_empty(), "proven by an empty secret");
            assert!(
                echoed.contains(&candidate.as_str()),
                "proven by a secret the body does not echo"
            );
        }
    }
    if !secret.is_empty() && echoed.iter().all(|e| *e == secret) {
        assert!(
            claim.proven_by(&SecretString::from(secret)),
            "the echoed secret does not prove the claim"
        );
    }
}
