//! Banks of India refund (full only): `POST /v2/payment/banks/india/refund`.
//!
//! A refund names the purchase it returns: Gate knows it by the purchase's payment id,
//! and reports on it in callbacks about that purchase, with `operation.type` `refund`.
//! `payment.merchant_refund_id` carries the refund command's own key, so its callback
//! finds its record.
//!
//! The document requires `payment.description` and allows "any other additional
//! parameters Gate supports"; payfleet adds the command's `amount` and `currency`. The
//! method "supports full refunds processing" only, so Gate checks that amount against
//! the purchase instead of reading it as a partial refund: equal, the whole purchase is
//! refunded; larger, it is declined "Refund amount more than init amount" (the
//! document's declined refund callback); smaller, refused. Without it, Gate would
//! refund whatever the purchase was while the event reported the command's amount.

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
        // The document's fields, and only the Gate parameters said above.
        let mut fields: Vec<&str> = body["payment"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            ["amount", "currency", "description", "merchant_refund_id"]
        );
        assert_eq!(body["payment"]["currency"], "INR");
    }
}
