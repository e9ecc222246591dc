//! Halyk epay's rules that its payment commands share.

use crate::contract::{Currency, Money};

/// Parses a payment's `details`: the method's fields, and epay's currencies.
pub(super) fn parse_details<T: serde::de::DeserializeOwned>(
    details: serde_json::Value,
    amount: Money,
) -> Result<T, String> {
    let parsed = crate::contract::reason::parse(&details, "details")?;
    if !CURRENCIES.contains(&amount.currency) {
        return Err(format!(
            "epay takes KZT, USD, EUR or RUB, not {}",
            amount.currency
        ));
    }
    Ok(parsed)
}

/// The currencies epay takes.
pub const CURRENCIES: [Currency; 4] = [Currency::KZT, Currency::USD, Currency::EUR, Currency::RUB];
