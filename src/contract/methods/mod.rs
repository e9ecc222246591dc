//! Each method's own fields in a command (`details`), typed and validated while
//! deserialising: what a publisher sends. The provider's file for the method builds its
//! request from them.

pub mod confirm_3ds;
mod epay;
pub mod google_pay;
pub mod homebank_payout;
pub mod india;
pub mod india_payout;
pub mod india_refund;
pub mod india_sale;
pub mod p2p_transfer;

pub use confirm_3ds::Confirm3ds;
pub use epay::CURRENCIES as EPAY_CURRENCIES;
pub use google_pay::GooglePay;
pub use homebank_payout::HomebankPayout;
pub use india_payout::IndiaPayout;
pub use india_refund::IndiaRefund;
pub use india_sale::IndiaSale;
pub use p2p_transfer::P2pTransfer;

/// Money and details shared by the methods' and the providers' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::contract::{Amount, Currency, Money};
    use serde_json::{Value, json};

    fn money(minor: u64, currency: Currency) -> Money {
        Money {
            minor: Amount::parse(minor).unwrap(),
            currency,
        }
    }

    pub fn inr(minor: u64) -> Money {
        money(minor, Currency::INR)
    }

    pub fn usd(minor: u64) -> Money {
        money(minor, Currency::USD)
    }

    pub fn kzt(minor: u64) -> Money {
        money(minor, Currency::KZT)
    }

    /// A Banks of India purchase's details with every field the document names.
    pub fn india_sale_details() -> Value {
        json!({
            "customer": {"id": "c1", "ip_address": "1.2.3.4", "email": "a@example.com",
                         "phone": "919876543210", "zip": "400009", "city": "Mumbai",
                         "first_name": "John", "last_name": "Waynen", "address": "99, Chakla Street"},
            "return_url": {"success": "https://shop.example/return"}
        })
    }

    /// A Banks of India payout's details.
    pub fn india_payout_details() -> Value {
        json!({
            "customer": {"id": "24900", "ip_address": "1.2.3.4"},
            "account": {"number": "5588994446666", "bank_code": "HDFC0001234", "bank_id": 412, "customer_name": "John Waynen"}
        })
    }
}
