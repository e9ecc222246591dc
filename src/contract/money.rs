//! Money in the core: integer minor units with an ISO-4217 currency. Conversion to a
//! provider's decimal form happens at that provider's edge, never through floats.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A positive amount in the currency's minor units (tiyn, paise, cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Amount(u64);

impl Amount {
    /// Largest amount accepted: far above any provider limit, far below overflow.
    pub const MAX: u64 = 1_000_000_000_000_000;

    pub fn parse(minor: u64) -> Result<Self, String> {
        match minor {
            0 => Err("amount must be greater than zero".into()),
            m if m > Self::MAX => Err(format!("amount must be at most {}", Self::MAX)),
            m => Ok(Self(m)),
        }
    }

    pub fn minor(self) -> u64 {
        self.0
    }
}

impl schemars::JsonSchema for Amount {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Amount".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A positive whole number of the currency's minor units (tiyn, paise, cents).",
            "type": "integer",
            "minimum": 1,
            "maximum": Self::MAX,
        })
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Any JSON number, so that a fraction, a negative or a huge one gets this
        // reason rather than serde's, which quotes it.
        let n = serde_json::Number::deserialize(d)?;
        let whole = n.as_u64().ok_or_else(|| {
            serde::de::Error::custom(format!(
                "amount must be a whole number of minor units from 1 to {}",
                Self::MAX
            ))
        })?;
        Amount::parse(whole).map_err(serde::de::Error::custom)
    }
}

/// ISO-4217 alphabetic code of a currency payfleet knows, with its minor-unit exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Currency {
    EUR,
    INR,
    KZT,
    RUB,
    USD,
}

impl Currency {
    pub fn code(self) -> &'static str {
        match self {
            Currency::EUR => "EUR",
            Currency::INR => "INR",
            Currency::KZT => "KZT",
            Currency::RUB => "RUB",
            Currency::USD => "USD",
        }
    }

    /// Digits after the decimal point (ISO-4217 exponent).
    pub fn exponent(self) -> u32 {
        2
    }

    /// `1` followed by `exponent` zeros: minor units per major unit.
    pub fn minor_per_major(self) -> u64 {
        10u64.pow(self.exponent())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount with its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    pub minor: Amount,
    pub currency: Currency,
}

impl Money {
    /// The amount as a decimal string in major units ("2000.00"), exact.
    pub fn to_decimal_string(self) -> String {
        let per = self.currency.minor_per_major();
        let exp = self.currency.exponent() as usize;
        format!(
            "{}.{:0exp$}",
            self.minor.minor() / per,
            self.minor.minor() % per
        )
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_huge_amounts_are_refused() {
        assert!(Amount::parse(0).is_err());
        assert!(Amount::parse(Amount::MAX + 1).is_err());
        assert_eq!(Amount::parse(1).unwrap().minor(), 1);
    }

    #[test]
    fn amounts_out_of_range_are_refused_without_quoting_them() {
        for minor in ["-5", "1.5", "100000000000000000000000", "1e30", "0"] {
            let e = serde_json::from_str::<Amount>(minor)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("amount must be"), "{minor}: {e}");
            assert!(!e.contains(minor), "{e}");
        }
        let e = serde_json::from_str::<Amount>("1000000000000000001").unwrap_err();
        assert!(e.to_string().starts_with("amount must be at most"), "{e}");
        assert_eq!(serde_json::from_str::<Amount>("42").unwrap().minor(), 42);
    }

    #[test]
    fn decimal_form_is_exact() {
        let m = |minor, currency| Money {
            minor: Amount::parse(minor).unwrap(),
            currency,
        };
        assert_eq!(m(200000, Currency::KZT).to_decimal_string(), "2000.00");
        assert_eq!(m(1, Currency::USD).to_decimal_string(), "0.01");
        assert_eq!(m(105, Currency::INR).to_decimal_string(), "1.05");
    }

    #[test]
    fn unknown_currency_is_refused() {
        let r: Result<Money, _> = serde_json::from_str(r#"{"minor":100,"currency":"XXX"}"#);
        assert!(r.is_err());
    }
}
