//! Banks of India: the field rules its purchases, payouts and refunds share.

use crate::contract::{Currency, Money};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A customer's IPv4 or IPv6 address, refused with a reason that names the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct IpAddress(pub IpAddr);

impl schemars::JsonSchema for IpAddress {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "IpAddress".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        IpAddr::json_schema(generator)
    }
}

impl<'de> Deserialize<'de> for IpAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map(IpAddress)
            .map_err(|_| serde::de::Error::custom("not an IPv4 or IPv6 address"))
    }
}

impl std::fmt::Display for IpAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Banks of India pays and is paid in Indian rupees only.
pub fn require_inr(amount: Money) -> Result<(), String> {
    if amount.currency != Currency::INR {
        return Err(format!(
            "Banks of India works in INR only, not {}",
            amount.currency
        ));
    }
    Ok(())
}

/// A required text field: not blank, at most `max` characters.
pub fn check_text(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(format!("details.{field} must be 1 to {max} characters"));
    }
    Ok(())
}

/// An optional text field: when present, as a required one.
pub fn check_optional(field: &str, value: &Option<String>, max: usize) -> Result<(), String> {
    value
        .as_deref()
        .map_or(Ok(()), |v| check_text(field, v, max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::methods::test_support::{inr, usd};

    #[test]
    fn only_rupees() {
        assert!(require_inr(inr(100)).is_ok());
        assert!(require_inr(usd(100)).unwrap_err().contains("USD"));
    }

    #[test]
    fn text_fields() {
        assert!(check_text("a", "x", 3).is_ok());
        assert!(check_text("a", "  ", 3).is_err());
        assert!(check_text("a", "abcd", 3).is_err());
        assert!(check_optional("a", &None, 3).is_ok());
        assert!(check_optional("a", &Some(String::new()), 3).is_err());
    }
}
