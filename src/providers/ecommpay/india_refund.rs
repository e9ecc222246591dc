//! Banks of India refund (full only): `POST /v2/payment/banks/india/refund`.
//!
//! A refund names the purchase it returns: Gate knows it by the purchase's payment id,
//! and reports on it in callbacks about that purchase, with `operation.type` `refund`.
//! `payment.merchant_refund_id` carries the refund command's own key, so its callback
//! finds its record.

use super::Gate;
use crate::contract::methods::IndiaRefund;
use crate::contract::{IdempotencyKey, Money};
use serde_json::json;

pub const PATH: &str = "/v2/payment/banks/india/refund";

impl IndiaRefund {
    pub fn request(&self, gate: &Gate, key: &IdempotencyKey, amount: Money) -> serde_json::Value {
        json!({
            "general": gate.general(&self.payment_id),
            "payment": {
                "description": self.description,
                "amount": amount.minor.minor(),
                "currency": amount.currency.code(),
                "merchant_refund_id": key.as_str(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::methods::test_support::inr;
    use crate::providers::ecommpay::india::test_support::gate;

    #[test]
    fn the_request_names_the_purchase_and_the_refund() {
        let gate = gate(101);
        let r = IndiaRefund::parse(
            json!({"payment_id": "sale-1", "description": "test_refund"}),
            inr(35000),
        )
        .unwrap();
        let body = r.request(&gate, &IdempotencyKey::parse("rf-1").unwrap(), inr(35000));
        assert_eq!(body["general"]["payment_id"], "sale-1");
        assert_eq!(body["payment"]["merchant_refund_id"], "rf-1");
        assert_eq!(body["payment"]["amount"], 35000);
    }
}
