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
use std::borrow::Cow;
use std::fmt::Write;
use subtle::ConstantTimeEq;

type HmacSha512 = Hmac<Sha512>;

const SKIPPED_KEY: &str = "frame_mode";

/// The string ECommPay signs: exposed for tests and for explaining mismatches.
pub fn signing_string(body: &Value) -> String {
    signing_string_without(body, &[])
}

/// The signing string of `body` leaving out the key at `skip` (a path of object keys,
/// e.g. `["general", "signature"]`), as if it had been removed: no copy of the body.
fn signing_string_without(body: &Value, skip: &[&str]) -> String {
    let mut items = Vec::new();
    flatten(body, &mut String::new(), skip, &mut items);
    // Stable: two items can share a path (`{"a": {"": {"": 1}}}` and `{"a:": 2}` both
    // give `a::`), and an unstable sort would order them by the sort's internals, which
    // change between toolchains. Stable keeps the body's key order, as the simulator does.
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::with_capacity(items.iter().map(|(p, v)| p.len() + v.len() + 2).sum());
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

/// Appends the `path:value` items under `value`; `path` is the path so far, one buffer
/// for the whole walk. `skip` leaves out one key: `skip[0]` here if it is the last.
fn flatten<'a>(
    value: &'a Value,
    path: &mut String,
    skip: &[&str],
    items: &mut Vec<(String, Cow<'a, str>)>,
) {
    let mut descend = |segment: &dyn std::fmt::Display, skip: &[&str], v: &'a Value| {
        let len = path.len();
        if len > 0 {
            path.push(':');
        }
        write!(path, "{segment}").expect("writing to a String");
        flatten(v, path, skip, items);
        path.truncate(len);
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter().filter(|(k, _)| k.as_str() != SKIPPED_KEY) {
                let below: &[&str] = match skip {
                    [only] if k == only => continue,
                    [first, rest @ ..] if k == first => rest,
                    _ => &[],
                };
                descend(&k.replace(':', "::"), below, v);
            }
        }
        Value::Array(list) => {
            for (i, v) in list.iter().enumerate() {
                descend(&i, &[], v);
            }
        }
        scalar => {
            let text = match scalar {
                Value::Bool(true) => Cow::Borrowed("1"),
                Value::Bool(false) => Cow::Borrowed("0"),
                Value::Null => Cow::Borrowed(""),
                Value::String(s) => Cow::Borrowed(s.as_str()),
                other => Cow::Owned(other.to_string()),
            };
            // A bare scalar at the root has an empty path; ECommPay bodies are objects.
            items.push((path.clone(), text));
        }
    }
}

fn mac(secret: &[u8], signing_string: &str) -> HmacSha512 {
    let mut mac = HmacSha512::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(signing_string.as_bytes());
    mac
}

/// Base64 HMAC-SHA512 signature of `body`, which must not contain its signature.
pub fn sign(secret: &[u8], body: &Value) -> String {
    STANDARD.encode(mac(secret, &signing_string(body)).finalize().into_bytes())
}

/// Whether `signature` is the signature of `body`, compared in constant time.
pub fn verify(secret: &[u8], body: &Value, signature: &str) -> bool {
    Signed::decode(signing_string(body), signature).is_some_and(|s| s.verified_by(secret))
}

/// A signed body taken apart once: the string that was signed and the signature it
/// carries, so that it can be checked against several keys (the fleet's accounts)
/// without flattening it again.
pub struct Signed {
    string: String,
    given: Vec<u8>,
}

impl Signed {
    /// A callback or status answer: the signature at the root. `None` without one.
    pub fn root(body: &Value) -> Option<Self> {
        Self::at(body, &["signature"])
    }

    /// A Gate request: the signature in `general.signature`. `None` without one.
    pub fn request(body: &Value) -> Option<Self> {
        Self::at(body, &["general", "signature"])
    }

    fn at(body: &Value, place: &[&str]) -> Option<Self> {
        let signature = place
            .iter()
            .try_fold(body, |v, key| v.as_object()?.get(*key))?
            .as_str()?;
        Self::decode(signing_string_without(body, place), signature)
    }

    fn decode(string: String, signature: &str) -> Option<Self> {
        let given = STANDARD.decode(signature.trim()).ok()?;
        Some(Signed { string, given })
    }

    /// Whether `secret` made this signature, compared in constant time.
    pub fn verified_by(&self, secret: &[u8]) -> bool {
        let expected = mac(secret, &self.string).finalize().into_bytes();
        expected.as_slice().ct_eq(&self.given).into()
    }
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
    Signed::request(body).is_some_and(|s| s.verified_by(secret))
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
    Signed::root(body).is_some_and(|s| s.verified_by(secret))
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
    fn items_sharing_a_path_keep_the_body_key_order() {
        // Found by the ecommpay fuzz property (payfleet against the simulator): with
        // enough of them, an unstable sort swapped items that share a path.
        let mut body = serde_json::Map::new();
        for i in 0..40 {
            body.insert(format!("k{i}"), json!({"": {"": format!("A{i}")}}));
            body.insert(format!("k{i}:"), json!(format!("B{i}")));
        }
        let string = signing_string(&Value::Object(body));
        for i in 0..40 {
            assert!(
                string.contains(&format!("k{i}:::A{i};k{i}:::B{i}")),
                "{string}"
            );
        }
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
    fn only_the_signature_itself_is_left_out() {
        // A `signature` elsewhere is signed like any other field.
        let body = json!({
            "general": {"payment_id": "p", "signature": "S"},
            "customer": {"signature": "kept"},
            "signature": "kept too"
        });
        assert_eq!(
            signing_string_without(&body, &["general", "signature"]),
            "customer:signature:kept;general:payment_id:p;signature:kept too"
        );
        assert_eq!(
            signing_string_without(&body, &["signature"]),
            "customer:signature:kept;general:payment_id:p;general:signature:S"
        );
        let mut removed = body.clone();
        removed["general"]
            .as_object_mut()
            .unwrap()
            .remove("signature");
        assert_eq!(
            signing_string_without(&body, &["general", "signature"]),
            signing_string(&removed)
        );
    }

    #[test]
    fn garbage_signatures_are_refused() {
        let body = json!({"a": 1, "signature": "not base64!"});
        assert!(!verify_root(b"k", &body));
        assert!(!verify_root(b"k", &json!({"a": 1})));
    }
}
