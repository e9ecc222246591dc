//! The card-data policy, in one place. Card data is the PAN, expiry, CVC, the holder's
//! name, and the Google Pay token. It lives in `secrecy` types (masked in Debug),
//! travels only in the command and in the request to epay, and is kept out of
//! everything payfleet stores, logs or publishes: the fingerprint holds a keyed hash of
//! it ([`keyed`] under a [`FingerprintKey`]), rejection reasons never quote input
//! (see `contract::reason`), idempotency keys that look like a PAN are refused
//! ([`holds_pan`]), and dead letters are redacted ([`redact`]).

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

/// A card that pays, given by its data. Every field is card data.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("required" = ["pan", "expiry", "cvc", "name"]))]
pub struct Card {
    /// Card data: the card number (PAN), 12 to 19 digits.
    #[schemars(with = "String", pattern(PAN_PATTERN))]
    pub pan: SecretString,
    #[serde(default)]
    #[schemars(with = "Expiry")]
    pub expiry: Option<Expiry>,
    /// Card data: the card's security code, 3 or 4 digits.
    #[serde(default)]
    #[schemars(with = "String", pattern(r"^[0-9]{3,4}$"))]
    pub cvc: Option<SecretString>,
    /// Card data: the card holder's name as printed on the card.
    #[serde(default)]
    #[schemars(with = "String", pattern(r"\S"))]
    pub name: Option<SecretString>,
}

/// What the decoder's PAN check takes, as a JSON Schema pattern.
const PAN_PATTERN: &str = r"^[0-9]{12,19}$";

/// A card that receives money: its number and nothing else. The contract asks no
/// more of it, so a command that sends its expiry or CVC is refused rather than have
/// them forwarded.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiverCard {
    /// Card data: the card number (PAN), 12 to 19 digits.
    #[schemars(with = "String", pattern(PAN_PATTERN))]
    pub pan: SecretString,
}

/// Card data: the card's expiry date.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expiry {
    /// `01` to `12`.
    #[schemars(with = "String", pattern(r"^(0[1-9]|1[0-2])$"))]
    pub month: SecretString,
    /// Two digits, as epay takes it.
    #[schemars(with = "String", pattern(r"^[0-9]{2}$"))]
    pub year: SecretString,
}

fn digits(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// A card's shape, checked; messages name the field, never its value.
pub trait CardShape {
    fn check(&self, at: &str) -> Result<(), String>;
}

fn check_pan(pan: &SecretString, at: &str) -> Result<(), String> {
    if !digits(pan.expose_secret(), 12..=19) {
        return Err(format!("{at}.pan must be 12 to 19 digits"));
    }
    Ok(())
}

impl CardShape for Card {
    fn check(&self, at: &str) -> Result<(), String> {
        check_pan(&self.pan, at)?;
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

impl CardShape for ReceiverCard {
    fn check(&self, at: &str) -> Result<(), String> {
        check_pan(&self.pan, at)
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
        super::hex::hex(&mac.finalize().into_bytes())
    }
}

/// Characters that may stand between the digit groups of a card number written by
/// hand (`4405 6397 …`, `4405-6397-…`).
const SEPARATORS: [char; 5] = [' ', '-', '.', '_', ':'];

/// Whether `text` holds something that looks like a card number anywhere: a run of 12
/// to 19 digits passing the Luhn check, single separators between its digits allowed.
pub fn holds_pan(text: &str) -> bool {
    let mut run = String::new();
    let mut last_was_digit = false;
    for c in text.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_digit() {
            run.push(c);
            last_was_digit = true;
        } else if last_was_digit && SEPARATORS.contains(&c) {
            last_was_digit = false;
        } else {
            if luhn_pan(&run) {
                return true;
            }
            run.clear();
            // A separator after a separator ends the run; this one may not start one.
            last_was_digit = false;
        }
    }
    false
}

/// Whether a run of digits is 12 to 19 long and passes the Luhn check.
fn luhn_pan(digits_only: &str) -> bool {
    if !digits(digits_only, 12..=19) {
        return false;
    }
    let sum: u32 = digits_only
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

/// Replaces card data in `value` (the known fields, and any other value or field name
/// that holds something looking like a PAN) with `with(original)`; returns whether
/// anything was replaced.
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
            Value::String(s) if holds_pan(s) => {
                *v = with(v);
                true
            }
            Value::Number(n) if holds_pan(&n.to_string()) => {
                *v = with(v);
                true
            }
            Value::Array(items) => items.iter_mut().fold(false, |c, i| stray(i, with) | c),
            Value::Object(map) => {
                let named: Vec<String> = map.keys().filter(|k| holds_pan(k)).cloned().collect();
                for name in &named {
                    let v = map.remove(name).expect("listed above");
                    let key = match with(&Value::String(name.clone())) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    map.insert(key, v);
                }
                map.values_mut()
                    .fold(!named.is_empty(), |c, i| stray(i, with) | c)
            }
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
            Value::String(s) => holds_pan(s),
            Value::Number(n) => holds_pan(&n.to_string()),
            Value::Array(items) => items.iter().any(stray),
            Value::Object(map) => map.iter().any(|(k, v)| holds_pan(k) || stray(v)),
            _ => false,
        }
    }
    CARD_FIELDS.iter().any(|p| value.pointer(p).is_some()) || stray(value)
}

/// Whether a command is epay's (by the routing key it came with, or the method it
/// names): its `details` may hold card data anywhere.
fn is_epay(routing_key: &str, value: Option<&Value>) -> bool {
    let by_method = value
        .and_then(|v| v.get("method"))
        .and_then(Value::as_str)
        .is_some_and(|m| matches!(m, "p2p" | "google_pay"));
    by_method || routing_key.split('.').next() == Some("epay")
}

/// A message body with its card data redacted, for the dead-letter queue, whatever the
/// reason it goes there. An epay command loses its whole `details` (card data may sit
/// in any field of it, misspelt or misplaced); every other body loses the card fields
/// and anything that looks like a PAN, separators and all. A body that is not JSON is
/// replaced whole if it is epay's or may hold card data. Bodies without card data are
/// returned untouched.
pub fn redact<'a>(body: &'a [u8], routing_key: &str) -> Cow<'a, [u8]> {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            let mut changed = false;
            if is_epay(routing_key, Some(&value))
                && let Some(details) = value.get_mut("details")
            {
                *details = Value::String(REDACTED.into());
                changed = true;
            }
            if replace(&mut value, &|_| Value::String(REDACTED.into())) | changed {
                Cow::Owned(serde_json::to_vec(&value).expect("a Value always serialises"))
            } else {
                Cow::Borrowed(body)
            }
        }
        Err(_) => {
            // Not JSON, so the fields cannot be told apart: if it may hold card data
            // (a long digit run, or a card field's name), none of it is kept.
            let text = String::from_utf8_lossy(body).to_lowercase();
            let long_digits = holds_pan(&text)
                || text
                    .split(|c: char| !c.is_ascii_digit())
                    .any(|run| run.len() >= 12);
            let card_words = ["pan", "cvc", "cvv", "cardcred", "expir"]
                .iter()
                .any(|w| text.contains(w));
            if is_epay(routing_key, None) || long_digits || card_words {
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
        let raw = serde_json::to_vec(&b).unwrap();
        assert!(matches!(redact(&raw, "ecommpay.payout"), Cow::Borrowed(_)));
    }

    fn redacted(body: &[u8], routing_key: &str) -> String {
        String::from_utf8(redact(body, routing_key).into_owned()).unwrap()
    }

    #[test]
    fn redaction_covers_known_fields_stray_pans_and_broken_json() {
        let mut b = body();
        b["details"]["note"] = json!(PAN);
        let out = redacted(&serde_json::to_vec(&b).unwrap(), "epay.transfer");
        assert!(
            !out.contains(PAN) && !out.contains("815") && !out.contains("5522"),
            "{out}"
        );
        let broken = format!("{{\"pan\": \"{PAN}\", \"cvc\": \"815\"");
        let out = redacted(broken.as_bytes(), "ecommpay.payout");
        assert!(!out.contains(PAN) && !out.contains("815"), "{out}");
        assert!(matches!(
            redact(b"{not json", "ecommpay.payout"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn pans_written_with_separators_are_found_in_free_text_and_field_names() {
        for text in [
            "4405 6397 0401 5096",
            "pay 4405-6397-0401-5096 now",
            "card:4405.6397.0401.5096",
            "order4405639704015096",
            "3775 145000 04820",
        ] {
            assert!(holds_pan(text), "{text}");
        }
        for text in [
            "4405 6397 0401 5097",     // fails Luhn
            "4405  6397 0401 5096",    // two separators end the run
            "2026-11-22",              // too short
            "12345678901234567890123", // too long
            "po-2026.11:22_A",
        ] {
            assert!(!holds_pan(text), "{text}");
        }
        let b = json!({"method": "homebank", "idempotency_key": "k",
            "details": {"comment": "card 4405 6397 0401 5096", "4405-6397-0401-5096": 1}});
        let out = redacted(&serde_json::to_vec(&b).unwrap(), "ecommpay.payout");
        assert!(!out.contains("4405") && out.contains("[redacted]"), "{out}");
    }

    #[test]
    fn an_epay_dead_letter_loses_its_details_whatever_they_hold() {
        let b = json!({"idempotency_key": "k", "method": "p2p",
            "details": {"sender": {"kard": {"number": "4405", "cvv": "815"}}}});
        let out = redacted(&serde_json::to_vec(&b).unwrap(), "epay.transfer");
        assert_eq!(
            out,
            r#"{"details":"[redacted]","idempotency_key":"k","method":"p2p"}"#
        );
        // By routing key as well, and a body that is not JSON at all.
        let b = json!({"details": {"x": "815"}});
        let out = redacted(&serde_json::to_vec(&b).unwrap(), "epay.transfer");
        assert!(!out.contains("815"), "{out}");
        assert!(redacted(b"cvc 815", "epay.transfer").starts_with("[redacted"));
    }

    #[test]
    fn debug_masks_card_data() {
        let card: Card =
            serde_json::from_value(body()["details"]["sender"]["card"].clone()).unwrap();
        let debug = format!("{card:?}");
        assert!(!debug.contains(PAN) && !debug.contains("815"), "{debug}");
        assert!(card.check("sender.card").is_ok());
    }

    #[test]
    fn a_receiver_card_is_a_pan_only() {
        let receiver = |v: Value| serde_json::from_value::<ReceiverCard>(v);
        assert!(receiver(json!({"pan": PAN})).unwrap().check("r").is_ok());
        let e = receiver(json!({"pan": PAN, "cvc": "815"})).unwrap_err();
        assert!(e.to_string().contains("unknown field `cvc`"), "{e}");
        assert!(receiver(json!({"pan": PAN, "expiry": {"month": "01", "year": "25"}})).is_err());
        let short = receiver(json!({"pan": "4405"}))
            .unwrap()
            .check("r")
            .unwrap_err();
        assert_eq!(short, "r.pan must be 12 to 19 digits");
    }
}
