//! Command decoding (`payfleet::contract::command::decode`) on any bytes a publisher
//! can send: it never panics, its answer depends on the body's JSON value only (not on
//! key order or spacing) and is the same every time, a valid command routes where
//! publishers route it, and no reason it gives echoes a card-number-long digit run of
//! the input.

use super::digit_runs::assert_quotes_no_long_run;
use payfleet::contract::command::{Decoded, decode, routing_key_of};
use payfleet::contract::{Amount, FingerprintKey};
use serde_json::Value;

/// What two decodings must agree on (Debug would hide nothing more and prints card
/// data masked anyway).
fn summary(d: &Decoded) -> String {
    match d {
        Decoded::Valid(c) => format!(
            "valid {} {} {} {}",
            c.key,
            c.routing_key(),
            c.amount.minor.minor(),
            c.fingerprint.as_str()
        ),
        Decoded::Invalid(i) => format!("invalid {} {} {}", i.key, i.fingerprint.as_str(), i.reason),
        Decoded::Undecodable(r) => format!("undecodable {r}"),
    }
}

pub fn check(data: &[u8]) {
    let key = FingerprintKey::new("fuzz-fingerprint-key".to_owned().into());
    let decoded = decode(data, &key);
    let json = serde_json::from_slice::<Value>(data).ok();
    let mut input = String::from_utf8_lossy(data).into_owned();
    if let Some(v) = &json {
        // Escapes (`\u0034`) spell digits the raw bytes do not show.
        input.push('\n');
        input.push_str(&v.to_string());
    }
    match &decoded {
        Decoded::Invalid(i) => assert_quotes_no_long_run(&i.reason, &input),
        Decoded::Undecodable(r) => assert_quotes_no_long_run(r, &input),
        Decoded::Valid(c) => {
            let v = json.as_ref().expect("a valid command is JSON");
            assert_eq!(
                routing_key_of(v).as_deref(),
                Ok(c.routing_key().as_str()),
                "the worker and the publishers route it alike"
            );
            assert!((1..=Amount::MAX).contains(&c.amount.minor.minor()));
        }
    }
    assert_eq!(summary(&decoded), summary(&decode(data, &key)));
    if let Some(v) = json {
        let canonical = serde_json::to_vec(&v).expect("a Value serialises");
        // (Floats may not survive a round trip through text: only compare when they do.)
        if serde_json::from_slice::<Value>(&canonical).ok().as_ref() == Some(&v) {
            assert_eq!(
                summary(&decoded),
                summary(&decode(&canonical, &key)),
                "the answer depends on the JSON value, not on its spelling"
            );
        }
    }
}
