//! The card-data policy, in one place. Card data is the PAN, expiry, CVC, the holder's
//! name, and the Google Pay token. It lives in `secrecy` types (masked in Debug),
//! travels only in the command and in the request to epay, and is kept out of
//! everything payfleet stores, logs or publishes: the fingerprint holds a keyed hash of
//! it ([`keyed`] under a [`FingerprintKey`]), rejection reasons are scrubbed
//! ([`scrub`]), and dead letters are redacted ([`redact`]).

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use std::borrow::Cow;

/// Where card data sits in a command body (JSON pointers).
pub const CARD_FIELDS: [&str; 9] = [
    "/details/sender/card/pan",
    "/details/sender/card/expiry",
    "/details/sender/card/cvc",
    "/details/sender/card/name",
    "/details/receiver/card/pan",
    "/details/receiver/card/name",
    // A receiver card takes only a PAN, but a command that sends more (and is rejected
    // for it) must not leak it either.
    "/details/receiver/card/expiry",
    "/details/receiver/card/cvc",
    "/details/google_pay/paymentMethodData/tokenizationData/token",
];

const REDACTED: &str = "[redacted]";
const NOT_JSON_REDACTED: &str = "[redacted: not JSON, and it may hold card data]";

/// A card given by its data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Card {
    pub pan: SecretString,
    #[serde(default)]
    pub expiry: Option<Expiry>,
    #[serde(default)]
    pub cvc: Option<SecretString>,
    #[serde(default)]
    pub name: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expiry {
    /// `01` to `12`.
    pub month: SecretString,
    /// Two digits, as epay takes it.
    pub year: SecretString,
}

fn digits(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

impl Card {
    /// Checks the card's shape; messages name the field, never its value.
    pub fn check(&self, at: &str, full: bool) -> Result<(), String> {
        if !digits(self.pan.expose_secret(), 12..=19) {
            return Err(format!("{at}.pan must be 12 to 19 digits"));
        }
        if !full {
            return Ok(());
        }
        let Some(expiry) = &self.expiry else {
            return Err(format!("{at}.expiry is required"));
        };
        let month = expiry.month.expose_secret();
        if !digits(month, 2..=2) || !("01"..="12").contains(&month) {
            return Err(format!("{at}.expiry.month must be 01 to 12"));
        }
        if !digits(expiry.year.expose_secret(), 2..=2) {
            return Err(format!("{at}.expiry.year must be two digits"));
        }
        match &self.cvc {
            Some(cvc) if digits(cvc.expose_secret(), 3..=4) => {}
            _ => return Err(format!("{at}.cvc must be 3 or 4 digits")),
        }
        match &self.name {
            Some(n) if !n.expose_secret().trim().is_empty() => Ok(()),
            _ => Err(format!("{at}.name is required")),
        }
    }
}

/// The key of the HMAC that stands in for card data in command fingerprints
/// (`PAYFLEET__EPAY__FINGERPRINT_KEY`). Every process that decodes commands must hold
/// the fleet's one key, or a redelivered command would look like a different body: so
/// it is passed in, never defaulted.
#[derive(Debug, Clone)]
pub struct FingerprintKey(SecretString);

impl FingerprintKey {
    pub fn new(key: SecretString) -> Self {
        FingerprintKey(key)
    }

    fn hmac_hex(&self, value: &Value) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret().as_bytes())
            .expect("HMAC takes any key length");
        mac.update(&serde_json::to_vec(value).expect("a Value always serialises"));
        super::fingerprint::hex(&mac.finalize().into_bytes())
    }
}

/// Whether `s` looks like a card number: 13 to 19 digits passing the Luhn check.
fn looks_like_pan(s: &str) -> bool {
    if !digits(s, 13..=19) {
        return false;
    }
    let sum: u32 = s
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Replaces card data in `value` (the known fields, and anything else that looks like
/// a PAN) with `with(original)`; returns whether anything was replaced.
fn replace(value: &mut Value, with: &dyn Fn(&Value) -> Value) -> bool {
    let mut changed = false;
    for pointer in CARD_FIELDS {
        if let Some(v) = value.pointer_mut(pointer) {
            *v = with(v);
            changed = true;
        }
    }
    fn stray(v: &mut Value, with: &dyn Fn(&Value) -> Value) -> bool {
        match v {
            Value::String(s) if looks_like_pan(s) => {
                *v = with(v);
                true
            }
            Value::Number(n) if looks_like_pan(&n.to_string()) => {
                *v = with(v);
                true
            }
            Value::Array(items) => items.iter_mut().fold(false, |c, i| stray(i, with) | c),
            Value::Object(map) => map.values_mut().fold(false, |c, i| stray(i, with) | c),
            _ => false,
        }
    }
    stray(value, with) | changed
}

/// The body as the fingerprint sees it: card data replaced by its keyed hash.
pub fn keyed<'a>(value: &'a Value, key: &FingerprintKey) -> Cow<'a, Value> {
    if !holds_card_data(value) {
        // The common case (no cards): no copy.
        return Cow::Borrowed(value);
    }
    let mut copy = value.clone();
    replace(&mut copy, &|v| {
        Value::String(format!("hmac:{}", key.hmac_hex(v)))
    });
    Cow::Owned(copy)
}

/// Whether a card field, or anything that looks like a PAN, is in `value`.
fn holds_card_data(value: &Value) -> bool {
    fn stray(v: &Value) -> bool {
        match v {
            Value::String(s) => looks_like_pan(s),
            Value::Number(n) => looks_like_pan(&n.to_string()),
            Value::Array(items) => items.iter().any(stray),
            Value::Object(map) => map.values().any(stray),
            _ => false,
        }
    }
    CARD_FIELDS.iter().any(|p| value.pointer(p).is_some()) || stray(value)
}

/// Whether a command body carries (or may carry) card data.
pub fn carries_card_data(value: &Value) -> bool {
    let epay_method = matches!(
        value.get("method").and_then(Value::as_str),
        Some("p2p" | "google_pay")
    );
    epay_method || holds_card_data(value)
}

/// A message with every quoted value and every number of three digits or more masked:
/// serde's errors quote the values they choke on.
pub fn scrub(message: &str) -> String {
    let mut unquoted = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            for n in chars.by_ref() {
                if n == '"' {
                    break;
                }
            }
            unquoted.push_str("\"***\"");
        } else {
            unquoted.push(c);
        }
    }
    mask_digit_runs(&unquoted, 3)
}

/// A message with every run of 12 digits or more masked, the shortest a card number
/// has: for reasons about commands that carry no card field, where [`scrub`] would
/// hide the numbers that explain them (a limit, a multiple) but a PAN may still stand
/// in any field.
pub fn mask_card_numbers(message: &str) -> String {
    mask_digit_runs(message, 12)
}

/// Masks each run of at least `min` digits, read through single separators so that a
/// number written in groups (`4405 6397 0401 5096`, `44-05-…`) is one run.
fn mask_digit_runs(message: &str, min: usize) -> String {
    const SEPARATORS: &[u8] = b" -._/";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..start]);
        let run = &rest[start..];
        let bytes = run.as_bytes();
        let (mut end, mut digits) = (0, 0);
        while end < bytes.len() {
            if bytes[end].is_ascii_digit() {
                digits += 1;
            } else if !(SEPARATORS.contains(&bytes[end])
                && bytes.get(end + 1).is_some_and(u8::is_ascii_digit))
            {
                break;
            }
            end += 1;
        }
        out.push_str(if digits >= min { "***" } else { &run[..end] });
        rest = &run[end..];
    }
    out.push_str(rest);
    out
}

/// A message body with its card data redacted, for the dead-letter queue. Bodies
/// without card data are returned untouched.
pub fn redact(body: &[u8]) -> Cow<'_, [u8]> {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            if replace(&mut value, &|_| Value::String(REDACTED.into())) {
                Cow::Owned(serde_json::to_vec(&value).expect("a Value always serialises"))
            } else {
                Cow::Borrowed(body)
            }
        }
        Err(_) => {
            // Not JSON, so the fields cannot be told apart: if it may hold card data
            // (a long digit run, or a card field's name), none of it is kept.
            let text = String::from_utf8_lossy(body).to_lowercase();
            let long_digits = text
                .split(|c: char| !c.is_ascii_digit())
                .any(|run| run.len() >= 12);
            let card_words = ["pan", "cvc", "cardcred", "expir"]
                .iter()
                .any(|w| text.contains(w));
            if long_digits || card_words {
                Cow::Owned(NOT_JSON_REDACTED.as_bytes().to_vec())
            } else {
                Cow::Borrowed(body)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PAN: &str = "4405639704015096";

    fn body() -> Value {
        json!({"method": "p2p", "details": {
            "sender": {"card": {"pan": PAN, "expiry": {"month": "01", "year": "25"}, "cvc": "815", "name": "A B"}},
            "receiver": {"card": {"pan": "5522042705066736"}},
            "description": "x"}})
    }

    fn key(k: &str) -> FingerprintKey {
        FingerprintKey::new(SecretString::from(k.to_owned()))
    }

    #[test]
    fn keyed_hides_card_data_and_is_stable() {
        let b = body();
        let keyed = |v: &Value| keyed(v, &key("k1")).into_owned();
        let k = keyed(&b);
        let text = serde_json::to_string(&k).unwrap();
        // (Hex digests may contain "815" by chance: look for the value itself.)
        assert!(!text.contains(PAN) && !text.contains("\"815\""), "{text}");
        assert_eq!(serde_json::to_string(&keyed(&b)).unwrap(), text);
        let mut other = body();
        other["details"]["sender"]["card"]["cvc"] = json!("816");
        assert_ne!(serde_json::to_string(&keyed(&other)).unwrap(), text);
        let other_key = super::keyed(&b, &key("k2")).into_owned();
        assert_ne!(serde_json::to_string(&other_key).unwrap(), text);
    }

    #[test]
    fn a_body_without_cards_is_untouched() {
        let b = json!({"method": "homebank", "details": {"customer": {"phone": "77074544579"}}});
        assert!(matches!(keyed(&b, &key("k")), Cow::Borrowed(_)));
        assert!(!carries_card_data(&b));
        let raw = serde_json::to_vec(&b).unwrap();
        assert!(matches!(redact(&raw), Cow::Borrowed(_)));
    }

    #[test]
    fn redaction_covers_known_fields_stray_pans_and_broken_json() {
        let mut b = body();
        b["details"]["note"] = json!(PAN);
        let out = String::from_utf8(redact(&serde_json::to_vec(&b).unwrap()).into_owned()).unwrap();
        assert!(
            !out.contains(PAN) && !out.contains("815") && !out.contains("5522"),
            "{out}"
        );
        let broken = format!("{{\"pan\": \"{PAN}\", \"cvc\": \"815\"");
        let out = String::from_utf8(redact(broken.as_bytes()).into_owned()).unwrap();
        assert!(!out.contains(PAN) && !out.contains("815"), "{out}");
        assert!(matches!(redact(b"{not json"), Cow::Borrowed(_)));
    }

    #[test]
    fn scrub_masks_values_but_keeps_field_names() {
        let m = format!(
            "invalid type: string \"{PAN}\", expected u32 at line 1 column 40; integer `4169`; unknown field `pan`"
        );
        let s = scrub(&m);
        assert!(!s.contains(PAN) && !s.contains("4169"), "{s}");
        assert!(s.contains("`pan`"), "{s}");
    }

    #[test]
    fn card_numbers_are_masked_in_groups_too_and_short_numbers_kept() {
        let m =
            "unknown variant `4405 6397 0401 5096`, or 44-05-63-97-04-01, max 4000.00 in 12 parts";
        let masked = mask_card_numbers(m);
        assert_eq!(
            masked,
            "unknown variant `***`, or ***, max 4000.00 in 12 parts"
        );
        assert_eq!(scrub("a 12.5 of 4 000"), "a *** of ***");
    }

    #[test]
    fn debug_masks_card_data() {
        let card: Card =
            serde_json::from_value(body()["details"]["sender"]["card"].clone()).unwrap();
        let debug = format!("{card:?}");
        assert!(!debug.contains(PAN) && !debug.contains("815"), "{debug}");
        assert!(card.check("sender.card", true).is_ok());
    }
}
