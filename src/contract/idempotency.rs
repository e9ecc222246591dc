//! The caller-chosen key that makes a command unique.

use serde::{Deserialize, Serialize};
use std::fmt;

/// 1 to 64 characters of `A-Z a-z 0-9 . _ : -`. The charset keeps the key safe to use
/// verbatim as a provider payment id and inside Redis key names. A key that looks like
/// a card number is refused: the key stands in Redis, every event and every log line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: impl Into<String>) -> Result<Self, String> {
        let s = s.into();
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(format!(
                "idempotency_key must be 1 to {} characters long",
                Self::MAX_LEN
            ));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
        {
            return Err("idempotency_key may hold only A-Z a-z 0-9 . _ : -".into());
        }
        if super::card::holds_pan(&s) {
            return Err("idempotency_key looks like a card number (12 to 19 digits \
                 passing the Luhn check): a key must not be card data"
                .into());
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl schemars::JsonSchema for IdempotencyKey {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "IdempotencyKey".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "The caller-chosen key that makes a command unique: 1 to 64 of \
                A-Z a-z 0-9 . _ : -. A key that looks like a card number (12 to 19 digits, \
                single separators between them allowed, passing the Luhn check) is refused.",
            "type": "string",
            "pattern": "^[A-Za-z0-9._:-]{1,64}$",
        })
    }
}

impl<'de> Deserialize<'de> for IdempotencyKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IdempotencyKey::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_charset() {
        assert!(IdempotencyKey::parse("po-2026.11:22_A").is_ok());
    }

    #[test]
    fn refuses_empty_long_and_odd_keys() {
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("x".repeat(65)).is_err());
        assert!(IdempotencyKey::parse("a b").is_err());
        assert!(IdempotencyKey::parse("a{b}").is_err());
        let e = IdempotencyKey::parse("a b").unwrap_err();
        assert!(!e.contains('\''), "the character is not quoted: {e}");
    }

    #[test]
    fn refuses_a_key_that_looks_like_a_card_number() {
        for pan in [
            "4405639704015096",
            "4405-6397-0401-5096",
            "pay-4405.6397.0401.5096",
            "377514500004820",
        ] {
            let e = IdempotencyKey::parse(pan).unwrap_err();
            assert!(e.contains("card number") && !e.contains("4405"), "{e}");
        }
        // Long digit runs that fail Luhn, or are too short or long, are keys.
        assert!(IdempotencyKey::parse("4405639704015097").is_ok());
        assert!(IdempotencyKey::parse("order-2026-11-22").is_ok());
        assert!(IdempotencyKey::parse("12345678901234567890").is_ok());
    }
}
