//! The command's `details` for a Banks of India payout: 1,000.00 to 500,000.00 INR to
//! an account at a bank the provider supports.

use super::india::{IpAddress, check_text, require_inr};
use crate::contract::Money;
use serde::{Deserialize, Serialize};

/// 1,000.00 INR.
pub const MIN_MINOR: u64 = 1_000_00;
/// 500,000.00 INR.
pub const MAX_MINOR: u64 = 500_000_00;

/// The command's `details` for a Banks of India payout.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IndiaPayout {
    pub customer: Customer,
    pub account: Account,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "IndiaPayoutCustomer")]
pub struct Customer {
    #[schemars(pattern(r"\S"), length(min = 1, max = 255))]
    pub id: String,
    pub ip_address: IpAddress,
}

/// The recipient's account.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "IndiaPayoutAccount")]
pub struct Account {
    /// Account number: 9 to 18 digits.
    #[schemars(pattern(r"^[0-9]{9,18}$"))]
    pub number: String,
    /// IFSC of the branch: four letters, a zero, six letters or digits (`HDFC0001234`).
    #[schemars(pattern(r"^[A-Z]{4}0[A-Z0-9]{6}$"))]
    pub bank_code: String,
    /// One of the provider's banks (`payfleet banks india payout`).
    pub bank_id: u32,
    /// Full name of the account holder.
    #[schemars(pattern(r"\S"), length(min = 1, max = 255))]
    pub customer_name: String,
}

impl IndiaPayout {
    pub fn parse(details: serde_json::Value, amount: Money) -> Result<Self, String> {
        let payout: IndiaPayout = crate::contract::reason::parse(&details, "details")?;
        check_amount(amount)?;
        check_text("customer.id", &payout.customer.id, 255)?;
        let a = &payout.account;
        if !(9..=18).contains(&a.number.len()) || !a.number.bytes().all(|b| b.is_ascii_digit()) {
            return Err("details.account.number must be 9 to 18 digits".into());
        }
        if !is_ifsc(&a.bank_code) {
            return Err(
                "details.account.bank_code is not an IFSC (four capital letters, 0, six letters or digits)"
                    .into(),
            );
        }
        check_text("account.customer_name", &a.customer_name, 255)?;
        Ok(payout)
    }
}

/// INR, 1,000.00 to 500,000.00.
pub fn check_amount(amount: Money) -> Result<(), String> {
    require_inr(amount)?;
    if !(MIN_MINOR..=MAX_MINOR).contains(&amount.minor.minor()) {
        return Err("a Banks of India payout must be 1000.00 to 500000.00 INR".into());
    }
    Ok(())
}

/// Indian Financial System Code: `AAAA0XXXXXX`.
pub fn is_ifsc(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 11
        && b[..4].iter().all(u8::is_ascii_uppercase)
        && b[4] == b'0'
        && b[5..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::methods::test_support::{inr, usd};
    use serde_json::json;

    use crate::contract::methods::test_support::india_payout_details as details;

    #[test]
    fn limits_are_inclusive() {
        assert!(check_amount(inr(1_000_00)).is_ok());
        assert!(check_amount(inr(500_000_00)).is_ok());
        assert!(
            check_amount(inr(999_99))
                .unwrap_err()
                .contains("1000.00 to")
        );
        assert!(check_amount(inr(500_000_01)).is_err());
        let usd = usd(1_500_00);
        assert!(check_amount(usd).unwrap_err().contains("INR"));
    }

    #[test]
    fn account_rules() {
        let amount = inr(1_500_00);
        assert!(IndiaPayout::parse(details(), amount).is_ok());
        let with = |field: &str, v: serde_json::Value| {
            let mut d = details();
            d["account"][field] = v;
            IndiaPayout::parse(d, amount)
        };
        assert!(
            with("number", json!("12345678"))
                .unwrap_err()
                .contains("number")
        );
        assert!(with("number", json!("1234567890123456789")).is_err());
        assert!(with("number", json!("12345678a")).is_err());
        assert!(
            with("bank_code", json!("test_code"))
                .unwrap_err()
                .contains("IFSC")
        );
        assert!(with("bank_code", json!("HDFC1001234")).is_err());
        assert!(with("bank_code", json!("hdfc0001234")).is_err());
        assert!(
            with("customer_name", json!(" "))
                .unwrap_err()
                .contains("customer_name")
        );
        assert!(with("bank_id", json!("401")).is_err());
        assert!(with("iban", json!("x")).unwrap_err().contains("iban"));
        let mut no_ip = details();
        no_ip["customer"]
            .as_object_mut()
            .unwrap()
            .remove("ip_address");
        assert!(
            IndiaPayout::parse(no_ip, amount)
                .unwrap_err()
                .contains("ip_address")
        );
    }
}
