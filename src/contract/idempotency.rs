//! The caller-chosen key that makes a command unique.

use serde::{Deserialize, Serialize};
use std::fmt;

/// 1 to 64 characters of `A-Z a-z 0-9 . _ : -`. The charset keeps the key safe to use
/// verbatim as a provider payment id and inside Redis key names.
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
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
        {
            return Err(format!(
                "idempotency_key contains {c:?}; allowed are A-Z a-z 0-9 . _ : -"
            ));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
    }
}
