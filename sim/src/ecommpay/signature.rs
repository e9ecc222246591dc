//! ECommPay's signature, from ARCHITECTURE.md ("Facts gathered beyond the seed
//! documents"): "flatten the JSON body (without its signature) into `path:value` items,
//! nested keys joined with `:`, array elements by index, `true`→`1`, `false`→`0`,
//! `null`→empty, strings verbatim, `:` inside a key doubled to `::`, empty objects and
//! arrays give nothing, the key `frame_mode` is skipped at every level; sort the items
//! by path, join with `;`, HMAC-SHA512 with the project's secret key, standard padded
//! Base64. Gate requests carry it in `general.signature`, callbacks at the root.
//! … Compare in constant time."

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha512;
use subtle::ConstantTimeEq;

/// The `path:value` items of `body`, unsorted.
fn flatten(path: &str, v: &Value, out: &mut Vec<(String, String)>) {
    let child = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}:{key}")
        }
    };
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter().filter(|(k, _)| k.as_str() != "frame_mode") {
                flatten(&child(&k.replace(':', "::")), v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&child(&i.to_string()), v, out);
            }
        }
        Value::Null => out.push((path.to_owned(), String::new())),
        Value::Bool(b) => out.push((path.to_owned(), if *b { "1" } else { "0" }.to_owned())),
        Value::Number(n) => out.push((path.to_owned(), n.to_string())),
        Value::String(s) => out.push((path.to_owned(), s.clone())),
    }
}

/// The text that is signed: the items sorted by path, joined with `;`.
pub fn signing_string(body: &Value) -> String {
    let mut items = Vec::new();
    flatten("", body, &mut items);
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items
        .iter()
        .map(|(p, v)| format!("{p}:{v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// The signature of `body`, which must not hold its own signature.
pub fn sign(secret: &[u8], body: &Value) -> String {
    let Ok(mut mac) = Hmac::<Sha512>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(signing_string(body).as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Signs a callback or status answer at its root (replacing any signature there).
pub fn sign_root(secret: &[u8], body: &mut Value) {
    if let Some(map) = body.as_object_mut() {
        map.remove("signature");
    }
    let signature = sign(secret, body);
    if let Some(map) = body.as_object_mut() {
        map.insert("signature".to_owned(), Value::String(signature));
    }
}

/// Signs a Gate request in `general.signature`.
pub fn sign_request(secret: &[u8], body: &mut Value) {
    if let Some(general) = body.get_mut("general").and_then(Value::as_object_mut) {
        general.remove("signature");
    }
    let signature = sign(secret, body);
    if let Some(general) = body.get_mut("general").and_then(Value::as_object_mut) {
        general.insert("signature".to_owned(), Value::String(signature));
    }
}

/// Checks a Gate request's `general.signature`, in constant time.
pub fn verify_request(secret: &[u8], body: &Value) -> bool {
    let Some(given) = body["general"]["signature"].as_str() else {
        return false;
    };
    let mut unsigned = body.clone();
    if let Some(general) = unsigned.get_mut("general").and_then(Value::as_object_mut) {
        general.remove("signature");
    }
    equal(&sign(secret, &unsigned), given)
}

/// Checks a root signature (callbacks, status answers), in constant time.
pub fn verify_root(secret: &[u8], body: &Value) -> bool {
    let Some(given) = body["signature"].as_str() else {
        return false;
    };
    let mut unsigned = body.clone();
    if let Some(map) = unsigned.as_object_mut() {
        map.remove("signature");
    }
    equal(&sign(secret, &unsigned), given)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    /// The official vectors live in `shared/test-vectors/`, two levels up once the crate
    /// is `main/sim`, one level up while it stands beside `main`.
    fn vectors_path() -> PathBuf {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let rel = "shared/test-vectors/ecommpay-signature.json";
        let candidates = [here.join("../..").join(rel), here.join("..").join(rel)];
        candidates
            .iter()
            .find(|p| p.exists())
            .cloned()
            .unwrap_or_else(|| {
                panic!("ecommpay-signature.json not found; looked at {candidates:?}")
            })
    }

    #[test]
    fn the_official_vectors_pass() {
        let path = vectors_path();
        let text = std::fs::read_to_string(&path).expect("the vectors file reads");
        let doc: Value = serde_json::from_str(&text).expect("the vectors file is JSON");
        let vectors = doc["vectors"].as_array().expect("a vectors list");
        assert!(!vectors.is_empty());
        for v in vectors {
            let secret = v["secret"].as_str().expect("a secret");
            let want = v["signature"].as_str().expect("a signature");
            assert_eq!(sign(secret.as_bytes(), &v["body"]), want, "{}", v["label"]);
            let mut signed = v["body"].clone();
            sign_root(secret.as_bytes(), &mut signed);
            assert!(verify_root(secret.as_bytes(), &signed), "{}", v["label"]);
        }
    }

    #[test]
    fn flattening_follows_the_rules() {
        let body = json!({
            "a:b": {"c": true, "d": false, "e": null},
            "list": [1, "x", {}],
            "empty": {}, "none": [],
            "frame_mode": "popup",
            "n": {"frame_mode": "x", "s": "v;w"}
        });
        assert_eq!(
            signing_string(&body),
            "a::b:c:1;a::b:d:0;a::b:e:;list:0:1;list:1:x;n:s:v;w"
        );
    }

    #[test]
    fn an_added_empty_object_keeps_the_signature_and_anything_else_breaks_it() {
        let mut body = json!({"payment": {"id": "p1", "status": "success"}});
        sign_root(b"k", &mut body);
        let mut padded = body.clone();
        padded["redirect_data"] = json!({});
        assert!(verify_root(b"k", &padded));
        let mut changed = body.clone();
        changed["payment"]["status"] = json!("decline");
        assert!(!verify_root(b"k", &changed));
        assert!(!verify_root(b"other", &body));
    }

    #[test]
    fn requests_are_signed_in_general() {
        let mut body = json!({"general": {"project_id": 198, "payment_id": "p"}});
        sign_request(b"k", &mut body);
        assert!(verify_request(b"k", &body));
        body["payment"] = json!({"amount": 1});
        assert!(!verify_request(b"k", &body));
    }
}
