//! HomeBank (Kazakhstan) payout: `POST /v2/payment/cash-out-kz/homebank/payout`.

use super::Gate;
use crate::contract::Money;
use crate::contract::methods::HomebankPayout;
use crate::providers::ProviderError;
use serde_json::json;

pub const PATH: &str = "/v2/payment/cash-out-kz/homebank/payout";

impl HomebankPayout {
    pub fn request(&self, gate: &Gate, payment_id: &str, amount: Money) -> serde_json::Value {
        json!({
            "general": gate.general(payment_id),
            "payment": { "amount": amount.minor.minor(), "currency": amount.currency.code() },
            "customer": {
                "id": self.customer.id,
                "phone": self.customer.phone,
                "ip_address": self.customer.ip_address.to_string(),
            },
        })
    }

    pub async fn submit(
        &self,
        gate: &Gate,
        payment_id: &str,
        amount: Money,
    ) -> Result<(), ProviderError> {
        gate.submit(PATH, self.request(gate, payment_id, amount))
            .await
    }
}
