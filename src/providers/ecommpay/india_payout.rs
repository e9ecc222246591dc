//! Banks of India payout: `POST /v2/payment/banks/india/payout`.
//!
//! 1,000.00 to 500,000.00 INR to an account at a bank the provider supports (checked
//! against the bank list, see `india_banks`). The provider processes payouts only in
//! its working hours (`india_hours`): outside them payfleet holds the command.

use super::Gate;
use crate::contract::Money;
use crate::contract::methods::IndiaPayout;
use serde_json::json;

pub const PATH: &str = "/v2/payment/banks/india/payout";

impl IndiaPayout {
    pub fn request(&self, gate: &Gate, payment_id: &str, amount: Money) -> serde_json::Value {
        json!({
            "general": gate.general(payment_id),
            "payment": { "amount": amount.minor.minor(), "currency": amount.currency.code() },
            "customer": {
                "id": self.customer.id,
                "ip_address": self.customer.ip_address.to_string(),
            },
            "account": {
                "number": self.account.number,
                "bank_code": self.account.bank_code,
                "bank_id": self.account.bank_id,
                "customer_name": self.account.customer_name,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::contract::methods::IndiaPayout;
    use crate::contract::methods::test_support::inr;
    use crate::providers::ecommpay::india::test_support::gate;
    use serde_json::json;

    use crate::contract::methods::test_support::india_payout_details as details;

    #[test]
    fn the_request_has_the_documented_shape() {
        let gate = gate(818);
        let p = IndiaPayout::parse(details(), inr(1_500_00)).unwrap();
        let body = p.request(&gate, "ORDER_1", inr(1_500_00));
        assert_eq!(body["general"]["project_id"], 818);
        assert_eq!(
            body["payment"],
            json!({"amount": 150000, "currency": "INR"})
        );
        assert_eq!(body["account"]["bank_id"], 412);
        assert_eq!(
            body["customer"],
            json!({"id": "24900", "ip_address": "1.2.3.4"})
        );
    }
}
