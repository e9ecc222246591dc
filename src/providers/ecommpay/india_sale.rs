//! Banks of India purchase (Gate `sale`): `POST /v2/payment/banks/india/sale`.
//!
//! Gate accepts the request, then sends a callback with `redirect_data`: where to send
//! the customer (their bank, or the provider's bank selection page when the command
//! names no bank). The final callback follows once the customer has paid or given up.

use super::Gate;
use super::india::{IpAddress, check_optional, check_text, require_inr};
use crate::contract::Money;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub const PATH: &str = "/v2/payment/banks/india/sale";

/// The command's `details` for a Banks of India purchase.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndiaSale {
    pub customer: Customer,
    pub return_url: ReturnUrl,
    /// The bank the customer chose on the merchant's side (see `payfleet banks india
    /// sale`); without it the provider shows its own bank selection page.
    #[serde(default)]
    pub bank_id: Option<u32>,
}

/// Who pays: `id` and `ip_address` are required; the rest is what the document
/// recommends sending, checked when present.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    pub id: String,
    pub ip_address: IpAddress,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub zip: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnUrl {
    /// Where the bank sends the customer back after paying.
    pub success: String,
}

impl IndiaSale {
    pub fn parse(details: serde_json::Value, amount: Money) -> Result<Self, String> {
        let sale: IndiaSale =
            serde_json::from_value(details).map_err(|e| format!("details: {e}"))?;
        require_inr(amount)?;
        let c = &sale.customer;
        check_text("customer.id", &c.id, 255)?;
        for (field, value) in [
            ("customer.first_name", &c.first_name),
            ("customer.last_name", &c.last_name),
            ("customer.city", &c.city),
            ("customer.address", &c.address),
        ] {
            check_optional(field, value, 255)?;
        }
        if let Some(phone) = &c.phone
            && (!(5..=15).contains(&phone.len()) || !phone.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err("details.customer.phone must be 5 to 15 digits".into());
        }
        if let Some(email) = &c.email
            && !is_email(email)
        {
            return Err("details.customer.email is not an email address".into());
        }
        if let Some(zip) = &c.zip
            && (zip.is_empty() || zip.len() > 10 || !zip.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err("details.customer.zip must be 1 to 10 letters or digits".into());
        }
        let url = &sale.return_url.success;
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.len() > 2048
            || url.contains(char::is_whitespace)
        {
            return Err("details.return_url.success must be an http(s) URL".into());
        }
        Ok(sale)
    }

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

/// Deliberately loose: one `@` with something on both sides and a dot after it.
fn is_email(s: &str) -> bool {
    s.len() <= 254
        && !s.contains(char::is_whitespace)
        && s.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ecommpay::india::test_support::{gate, inr, usd};
    use serde_json::json;

    fn details() -> serde_json::Value {
        json!({
            "customer": {"id": "c1", "ip_address": "1.2.3.4", "email": "a@example.com",
                         "phone": "919876543210", "zip": "400009", "city": "Mumbai",
                         "first_name": "John", "last_name": "Waynen", "address": "99, Chakla Street"},
            "return_url": {"success": "https://shop.example/return"}
        })
    }

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

    #[test]
    fn every_rule_is_checked() {
        let amount = inr(1500);
        let with = |path: &[&str], v: serde_json::Value| {
            let mut d = details();
            let mut at = &mut d;
            for p in &path[..path.len() - 1] {
                at = &mut at[*p];
            }
            at[path[path.len() - 1]] = v;
            IndiaSale::parse(d, amount)
        };
        assert!(
            with(&["customer", "id"], json!(""))
                .unwrap_err()
                .contains("customer.id")
        );
        assert!(with(&["customer", "ip_address"], json!("1.2.3")).is_err());
        assert!(
            with(&["customer", "email"], json!("nope"))
                .unwrap_err()
                .contains("email")
        );
        assert!(
            with(&["customer", "phone"], json!("+91 98"))
                .unwrap_err()
                .contains("phone")
        );
        assert!(
            with(&["customer", "zip"], json!("40 00"))
                .unwrap_err()
                .contains("zip")
        );
        assert!(
            with(&["return_url", "success"], json!("ftp://x"))
                .unwrap_err()
                .contains("return_url")
        );
        assert!(
            with(&["customer", "surprise"], json!(1))
                .unwrap_err()
                .contains("surprise")
        );
        assert!(with(&["bank_id"], json!("HDFC")).is_err());
        let usd = usd(1500);
        assert!(
            IndiaSale::parse(details(), usd)
                .unwrap_err()
                .contains("INR")
        );
        let mut no_return = details();
        no_return.as_object_mut().unwrap().remove("return_url");
        assert!(
            IndiaSale::parse(no_return, amount)
                .unwrap_err()
                .contains("return_url")
        );
    }
}
