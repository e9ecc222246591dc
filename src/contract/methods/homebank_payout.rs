//! The command's `details` for a HomeBank (Kazakhstan) payout, and HomeBank's amount rules.

use crate::contract::{Amount, Currency, Money};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub const CURRENCIES: [Currency; 4] = [Currency::EUR, Currency::KZT, Currency::RUB, Currency::USD];
/// Below 4,000.00 KZT a payout must be a multiple of 2,000.00; from there of 1,000.00.
const KZT_THRESHOLD: u64 = 4_000_00;
const KZT_STEP_BELOW: u64 = 2_000_00;
const KZT_STEP_ABOVE: u64 = 1_000_00;

/// The command's `details` for a HomeBank payout.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HomebankPayout {
    pub customer: Customer,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "HomebankCustomer")]
pub struct Customer {
    /// The customer's id in the merchant's system.
    #[schemars(pattern(r"\S"), length(min = 1, max = 255))]
    pub id: String,
    /// The phone the cash-out code is sent to by SMS: digits only, country code first.
    #[schemars(pattern(r"^[0-9]{10,15}$"))]
    pub phone: String,
    pub ip_address: IpAddr,
}

impl HomebankPayout {
    pub fn parse(details: serde_json::Value, amount: Money) -> Result<Self, String> {
        let payout: HomebankPayout = crate::contract::reason::parse(&details, "details")?;
        check_amount(amount)?;
        let c = &payout.customer;
        if c.id.trim().is_empty() || c.id.len() > 255 {
            return Err("details.customer.id must be 1 to 255 characters".into());
        }
        if !(10..=15).contains(&c.phone.len()) || !c.phone.bytes().all(|b| b.is_ascii_digit()) {
            return Err(
                "details.customer.phone must be 10 to 15 digits, country code first".into(),
            );
        }
        Ok(payout)
    }
}

/// HomeBank's currency and KZT denomination rules.
pub fn check_amount(amount: Money) -> Result<(), String> {
    if !CURRENCIES.contains(&amount.currency) {
        return Err(format!(
            "HomeBank pays out in EUR, KZT, RUB or USD, not {}",
            amount.currency
        ));
    }
    if amount.currency == Currency::KZT {
        let minor = amount.minor.minor();
        let step = if minor < KZT_THRESHOLD {
            KZT_STEP_BELOW
        } else {
            KZT_STEP_ABOVE
        };
        if !minor.is_multiple_of(step) {
            return Err(format!(
                "a HomeBank payout of this size must be a multiple of {} KZT",
                Money {
                    minor: Amount::parse(step).expect("step > 0"),
                    currency: Currency::KZT
                }
                .to_decimal_string()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::contract::methods::test_support::kzt;

    #[test]
    fn kzt_denominations() {
        assert!(check_amount(kzt(2_000_00)).is_ok());
        assert!(
            check_amount(kzt(3_000_00)).is_err(),
            "below 4,000 needs multiples of 2,000"
        );
        assert!(check_amount(kzt(4_000_00)).is_ok());
        assert!(check_amount(kzt(5_000_00)).is_ok());
        assert!(check_amount(kzt(5_500_00)).is_err());
        assert!(check_amount(kzt(1_000_00)).is_err());
        assert!(check_amount(kzt(2_000_01)).is_err());
    }

    #[test]
    fn other_currencies() {
        let usd = Money {
            minor: Amount::parse(1234).unwrap(),
            currency: Currency::USD,
        };
        assert!(check_amount(usd).is_ok());
        let inr = Money {
            minor: Amount::parse(1234).unwrap(),
            currency: Currency::INR,
        };
        assert!(check_amount(inr).is_err());
    }

    #[test]
    fn phone_and_ip_are_checked() {
        let amount = kzt(2_000_00);
        let ok = serde_json::json!({"customer": {"id": "1", "phone": "77074544579", "ip_address": "1.1.1.1"}});
        assert!(HomebankPayout::parse(ok, amount).is_ok());
        let bad_phone = serde_json::json!({"customer": {"id": "1", "phone": "+7 707", "ip_address": "1.1.1.1"}});
        assert!(HomebankPayout::parse(bad_phone, amount).is_err());
        let bad_ip = serde_json::json!({"customer": {"id": "1", "phone": "77074544579", "ip_address": "111.222.333.444"}});
        assert!(HomebankPayout::parse(bad_ip, amount).is_err());
        let missing = serde_json::json!({"customer": {"id": "1"}});
        assert!(HomebankPayout::parse(missing, amount).is_err());
    }
}
