//! Every official ECommPay known-answer vector in ../shared/test-vectors must pass.

use payfleet::providers::ecommpay::signature;
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/test-vectors/ecommpay-signature.json"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the signature vectors must be at {path}: {e}"));
    let doc: Value = serde_json::from_str(&text).expect("vectors are JSON");
    doc["vectors"].as_array().expect("a vectors array").clone()
}

#[test]
fn every_vector_signs_to_its_known_answer() {
    let vectors = vectors();
    assert!(vectors.len() >= 10, "expected the full vector set");
    for v in &vectors {
        let label = v["label"].as_str().unwrap();
        let secret = v["secret"].as_str().unwrap().as_bytes();
        let expected = v["signature"].as_str().unwrap();
        assert_eq!(
            signature::sign(secret, &v["body"]),
            expected,
            "vector {label}: signing string {:?}",
            signature::signing_string(&v["body"])
        );
        assert!(signature::verify(secret, &v["body"], expected), "{label}");
    }
}

#[test]
fn every_vector_fails_with_a_wrong_secret_or_a_changed_body() {
    for v in vectors() {
        let label = v["label"].as_str().unwrap();
        let expected = v["signature"].as_str().unwrap();
        assert!(
            !signature::verify(b"wrong", &v["body"], expected),
            "{label}"
        );
        let mut changed = v["body"].clone();
        changed
            .as_object_mut()
            .unwrap()
            .insert("injected".into(), Value::from(1));
        let secret = v["secret"].as_str().unwrap().as_bytes();
        assert!(!signature::verify(secret, &changed, expected), "{label}");
    }
}

#[test]
fn callbacks_carry_the_signature_at_the_root() {
    for v in vectors() {
        let secret = v["secret"].as_str().unwrap().as_bytes();
        let mut body = v["body"].clone();
        body.as_object_mut().unwrap().insert(
            "signature".into(),
            Value::String(v["signature"].as_str().unwrap().into()),
        );
        assert!(signature::verify_root(secret, &body));
    }
}
