//! epay amounts are decimal numbers of major units in JSON (`12.22`) and decimal
//! strings in the token form. payfleet's integer minor units are converted here,
//! exactly, without floats.

use crate::contract::{Currency, Money};
use serde::Serialize;
use serde_json::value::RawValue;

/// An amount in epay's decimal form, kept as text so it is serialised digit for digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpayAmount(String);

impl EpayAmount {
    pub fn of(money: Money) -> Self {
        EpayAmount(money.to_decimal_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for EpayAmount {
    /// A JSON number, written from the decimal text (a float could round it).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RawValue::from_string(self.0.clone())
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

/// Reads a decimal amount in major units (`"100"`, `"12.2"`, `"12.22"`) back into minor
/// units; `None` for anything else (more decimals than the currency has, signs,
/// exponents, overflow).
pub fn parse_minor(text: &str, currency: Currency) -> Option<u64> {
    let exp = currency.exponent() as usize;
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (!frac.is_empty() && !digits(frac)) || frac.len() > exp {
        return None;
    }
    if text.ends_with('.') {
        return None;
    }
    let major: u64 = whole.parse().ok()?;
    let minor: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<exp$}").parse().ok()?
    };
    major
        .checked_mul(currency.minor_per_major())?
        .checked_add(minor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Amount;
    use proptest::prelude::*;

    use crate::contract::methods::test_support::kzt;

    #[test]
    fn known_values() {
        assert_eq!(EpayAmount::of(kzt(1222)).as_str(), "12.22");
        assert_eq!(EpayAmount::of(kzt(10000)).as_str(), "100.00");
        assert_eq!(EpayAmount::of(kzt(5)).as_str(), "0.05");
        assert_eq!(
            serde_json::to_string(&EpayAmount::of(kzt(1222))).unwrap(),
            "12.22"
        );
        assert_eq!(parse_minor("12.2", Currency::KZT), Some(1220));
        assert_eq!(parse_minor("100", Currency::KZT), Some(10000));
        for bad in ["", ".5", "1.", "1.234", "-1", "1e3", "1,00", " 1"] {
            assert_eq!(parse_minor(bad, Currency::KZT), None, "{bad:?}");
        }
    }

    proptest! {
        /// Every amount payfleet accepts survives the trip to epay's decimal JSON number
        /// and back, digit for digit.
        #[test]
        fn conversion_is_exact(minor in 1u64..=Amount::MAX) {
            let money = kzt(minor);
            let json = serde_json::to_string(&EpayAmount::of(money)).unwrap();
            prop_assert_eq!(parse_minor(&json, Currency::KZT), Some(minor));
            prop_assert_eq!(json, format!("{}.{:02}", minor / 100, minor % 100));
        }
    }
}
