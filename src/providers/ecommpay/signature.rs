//! ECommPay request signing and callback verification.
//!
//! The body (without its signature) is flattened into `path:value` items: nested keys
//! joined with `:`, array elements by index, `true`→`1`, `false`→`0`, `null`→empty,
//! strings verbatim, a `:` inside a key doubled, empty objects and arrays dropped and
//! `frame_mode` skipped at every level. The items are sorted by path, joined with `;`
//! and signed with HMAC-SHA512 under the project's secret key, in padded Base64.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha512;
use subtle::ConstantTimeEq;

type HmacSha512 = Hmac<Sha512>;

const SKIPPED_KEY: &str = "frame_mode";

/// The string ECommPay signs: exposed for tests and for explaining mismatches.
pub fn signing_string(body: &Value) -> String {
    let mut items: Vec<(String, String)> = Vec::new();
    flatten(body, None, &mut items);
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (i, (path, value)) in items.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(path);
        out.push(':');
        out.push_str(value);
    }
    out
}

fn flatten(value: &Value, path: Option<&str>, items: &mut Vec<(String, String)>) {
    let join = |segment: &str| match path {
        Some(p) => format!("{p}:{segment}"),
        None => segment.to_owned(),
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter().filter(|(k, _)| k.as_str() != SKIPPED_KEY) {
                flatten(v, Some(&join(&k.replace(':', "::"))), items);
            }
        }
        Value::Array(list) => {
            for (i, v) in list.iter().enumerate() {
                flatten(v, Some(&join(&i.to_string())), items);
            }
        }
        scalar => {
            let text = match scalar {
                Value::Bool(true) => "1".to_owned(),
                Value::Bool(false) => "0".to_owned(),
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            // A bare scalar at the root has no path; ECommPay bodies are always objects.
            items.push((path.unwrap_or_default().to_owned(), text));
        }
    }
}

fn mac(secret: &[u8], body: &Value) -> HmacSha512 {
    let mut mac = HmacSha512::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(signing_string(body).as_bytes());
    mac
}

/// Base64 HMAC-SHA512 signature of `body`, which must not contain its signature.
pub fn sign(secret: &[u8], body: &Value) -> String {
    STANDARD.encode(mac(secret, body).finalize().into_bytes())
}

/// Whether `signature` is the signature of `body`, compared in constant time.
pub fn verify(secret: &[u8], body: &Value, signature: &str) -> bool {
    let Ok(given) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let expected = mac(secret, body).finalize().into_bytes();
    expected.as_slice().ct_eq(&given).into()
}

/// Signs a Gate request in place: the signature goes into `general.signature`.
pub fn sign_request(secret: &[u8], body: &mut Value) {
    if let Some(general) = body.get_mut("general").and_then(Value::as_object_mut) {
        general.remove("signature");
    }
    let signature = sign(secret, body);
    if let Some(general) = body.get_mut("general").and_then(Value::as_object_mut) {
        general.insert("signature".into(), Value::String(signature));
    }
}

/// Verifies a signed Gate request (signature in `general.signature`).
pub fn verify_request(secret: &[u8], body: &Value) -> bool {
    let mut unsigned = body.clone();
    let Some(signature) = unsigned
        .get_mut("general")
        .and_then(Value::as_object_mut)
        .and_then(|g| g.remove("signature"))
    else {
        return false;
    };
    signature
        .as_str()
        .is_some_and(|s| verify(secret, &unsigned, s))
}

/// Signs a callback or status answer in place: the signature goes at the root.
pub fn sign_root(secret: &[u8], body: &mut Value) {
    if let Some(map) = body.as_object_mut() {
        map.remove("signature");
    }
    let signature = sign(secret, body);
    if let Some(map) = body.as_object_mut() {
        map.insert("signature".into(), Value::String(signature));
    }
}

/// Verifies a callback or status answer (signature at the root).
pub fn verify_root(secret: &[u8], body: &Value) -> bool {
    let mut unsigned = body.clone();
    let Some(signature) = unsigned.as_object_mut().and_then(|m| m.remove("signature")) else {
        return false;
    };
    signature
        .as_str()
        .is_some_and(|s| verify(secret, &unsigned, s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattening_follows_the_rules() {
        let body = json!({
            "b": {"x:y": true, "n": null, "e": {}, "l": []},
            "a": [1, "two", false],
            "frame_mode": "popup",
            "nested": {"frame_mode": "iframe", "k": 1.5}
        });
        assert_eq!(
            signing_string(&body),
            "a:0:1;a:1:two;a:2:0;b:n:;b:x::y:1;nested:k:1.5"
        );
    }

    #[test]
    fn request_round_trip_and_tampering() {
        let mut body =
            json!({"general": {"project_id": 1, "payment_id": "p"}, "payment": {"amount": 100}});
        sign_request(b"s3cret", &mut body);
        assert!(verify_request(b"s3cret", &body));
        assert!(!verify_request(b"other", &body));
        body["payment"]["amount"] = json!(101);
        assert!(!verify_request(b"s3cret", &body));
    }

    #[test]
    fn garbage_signatures_are_refused() {
        let body = json!({"a": 1, "signature": "not base64!"});
        assert!(!verify_root(b"k", &body));
        assert!(!verify_root(b"k", &json!({"a": 1})));
    }
}
