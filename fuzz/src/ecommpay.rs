//! ECommPay's signature flattening and callback reading
//! (`payfleet::providers::ecommpay::{signature, callback}`) on any body. The first
//! input byte is flags (bit 0: sign the body at its root with a key of the fleet, so
//! the reading past the signature is reached too); the rest is the body.
//!
//! Flattening: deterministic, the same string as the simulator's independent reading
//! of the rules, and leaving a signature out in place (root or `general`) signs what
//! removing it would. Reading: never authentic without a key of the fleet (and never
//! what the simulator's verification refuses), always authentic when signed by one,
//! the same every time, and an unsigned empty value added to an authentic callback
//! changes nothing.

use payfleet::providers::callback::{Authentic, CallbackVerdict, Refusal};
use payfleet::providers::ecommpay::{callback, signature};
use payfleet_sim::ecommpay::signature as sim;
use serde_json::{Value, json};

const KEY: &[u8] = b"fuzz-project-key";
const ACCOUNT_KEY: &[u8] = b"fuzz-account-key";
const STRANGER: &[u8] = b"fuzz-stranger-key";

pub fn check(data: &[u8]) {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let Ok(mut json) = serde_json::from_slice::<Value>(body) else {
        assert_eq!(
            verdict(body, &[KEY]),
            CallbackVerdict::Refused(Refusal::Malformed("body is not JSON"))
        );
        return;
    };
    flattening(&json);
    if flags & 1 == 0 {
        reading(body, &json, false);
        return;
    }
    signature::sign_root(ACCOUNT_KEY, &mut json);
    let raw = serde_json::to_vec(&json).expect("a Value serialises");
    // (Floats may not survive a round trip through text: only read what does.)
    if serde_json::from_slice::<Value>(&raw).ok().as_ref() == Some(&json) {
        reading(&raw, &json, json.is_object());
    }
}

fn verdict(body: &[u8], keys: &[&[u8]]) -> CallbackVerdict {
    callback::verdict(body, keys.iter().copied())
}

fn flattening(json: &Value) {
    let string = signature::signing_string(json);
    assert_eq!(string, signature::signing_string(json), "deterministic");
    assert_eq!(
        string,
        sim::signing_string(json),
        "payfleet and the simulator flatten alike"
    );
    let mut root = json.clone();
    signature::sign_root(KEY, &mut root);
    if root.is_object() {
        assert!(signature::verify_root(KEY, &root));
        assert!(sim::verify_root(KEY, &root));
        assert!(!signature::verify_root(STRANGER, &root));
    }
    let mut request = json.clone();
    signature::sign_request(KEY, &mut request);
    if request.get("general").is_some_and(Value::is_object) {
        assert!(signature::verify_request(KEY, &request));
        assert!(sim::verify_request(KEY, &request));
        assert!(!signature::verify_request(STRANGER, &request));
    }
}

fn reading(raw: &[u8], json: &Value, signed: bool) {
    let fleet: &[&[u8]] = &[KEY, ACCOUNT_KEY];
    let answer = verdict(raw, fleet);
    assert_eq!(answer, verdict(raw, fleet), "deterministic");
    let CallbackVerdict::Authentic(authentic) = &answer else {
        assert!(
            !signed,
            "a callback signed by the fleet was refused: {answer:?}"
        );
        assert!(
            matches!(answer, CallbackVerdict::Refused(_)),
            "reading a callback touches no store: {answer:?}"
        );
        return;
    };
    assert!(
        fleet.iter().any(|k| sim::verify_root(k, json)),
        "authentic, though the simulator's verification refuses it"
    );
    assert_eq!(
        verdict(raw, &[STRANGER]),
        CallbackVerdict::Refused(Refusal::BadSignature),
        "authentic without a key of the fleet"
    );
    if let Authentic::Settle(s) = authentic {
        let report = callback::read(json).expect("settled, so readable");
        assert_eq!(s.key.as_str(), report.payment_id);
        assert_eq!(Some(s.state), report.state);
    }
    if json.is_object() && json.get("redirect_data").is_none() {
        let mut padded = json.clone();
        padded["redirect_data"] = json!({});
        let padded = serde_json::to_vec(&padded).expect("a Value serialises");
        assert_eq!(
            verdict(&padded, fleet),
            answer,
            "an unsigned empty redirect_data changed an authentic callback"
        );
    }
}
