//! Banks of India purchase (Gate `sale`): `POST /v2/payment/banks/india/sale`.
//!
//! Gate accepts the request, then sends a callback with `redirect_data`: where to send
//! the customer (their bank, or the provider's bank selection page when the command
//! names no bank). The final callback follows once the customer has paid or given up.

use super::Gate;
use crate::contract::Money;
use crate::contract::methods::IndiaSale;
use serde_json::json;

pub const PATH: &str = "/v2/payment/banks/india/sale";

impl IndiaSale {
    pub fn request(&self, gate: &Gate, payment_id: &str, amount: Money) -> serde_json::Value {
        let c = &self.customer;
        let mut customer = json!({ "id": c.id, "ip_address": c.ip_address.to_string() });
        for (name, value) in [
            ("first_name", &c.first_name),
            ("last_name", &c.last_name),
            ("phone", &c.phone),
            ("email", &c.email),
            ("zip", &c.zip),
            ("city", &c.city),
            ("address", &c.address),
        ] {
            if let Some(v) = value {
                customer[name] = json!(v);
            }
        }
        let mut body = json!({
            "general": gate.general(payment_id),
            "payment": { "amount": amount.minor.minor(), "currency": amount.currency.code() },
            "customer": customer,
            "return_url": { "success": self.return_url.success },
        });
        if let Some(bank_id) = self.bank_id {
            body["account"] = json!({ "bank_id": bank_id });
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use crate::contract::methods::IndiaSale;
    use crate::contract::methods::test_support::inr;
    use crate::providers::ecommpay::india::test_support::gate;
    use serde_json::json;

    use crate::contract::methods::test_support::india_sale_details as details;

    #[test]
    fn a_full_purchase_parses_and_builds_the_documented_request() {
        let sale = IndiaSale::parse(details(), inr(1500)).unwrap();
        let gate = gate(7);
        let body = sale.request(&gate, "p-1", inr(1500));
        assert_eq!(body["payment"], json!({"amount": 1500, "currency": "INR"}));
        assert_eq!(body["customer"]["ip_address"], "1.2.3.4");
        assert_eq!(body["customer"]["city"], "Mumbai");
        assert_eq!(body["return_url"]["success"], "https://shop.example/return");
        assert!(
            body.get("account").is_none(),
            "bank chosen on the provider's side"
        );
    }
}
