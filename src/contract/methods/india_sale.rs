//! The command's `details` for a Banks of India purchase.

use super::india::{IpAddress, check_optional, check_text, require_inr};
use crate::contract::Money;
use serde::{Deserialize, Serialize};

/// The command's `details` for a Banks of India purchase.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "IndiaSaleCustomer")]
pub struct Customer {
    #[schemars(pattern(r"\S"), length(min = 1, max = 255))]
    pub id: String,
    pub ip_address: IpAddress,
    #[serde(default)]
    #[schemars(pattern(r"\S"), length(min = 1, max = 255))]
    pub first_name: Option<String>,
    #[serde(default)]
    #[schemars(pattern(r"\S"), length(min = 1, max = 255))]
    pub last_name: Option<String>,
    #[serde(default)]
    #[schemars(pattern(r"^[0-9]{5,15}$"))]
    pub phone: Option<String>,
    /// Checked loosely: one `@`, something before it, a dot inside what follows.
    #[serde(default)]
    #[schemars(pattern(r"^[^@\s]+@[^.\s][^\s]*\.[^\s]*[^.\s]$"), length(max = 254))]
    pub email: Option<String>,
    #[serde(default)]
    #[schemars(pattern(r"^[A-Za-z0-9]{1,10}$"))]
    pub zip: Option<String>,
    #[serde(default)]
    #[schemars(pattern(r"\S"), length(min = 1, max = 255))]
    pub city: Option<String>,
    #[serde(default)]
    #[schemars(pattern(r"\S"), length(min = 1, max = 255))]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "IndiaSaleReturnUrl")]
pub struct ReturnUrl {
    /// Where the bank sends the customer back after paying.
    #[schemars(pattern(r"^https?://\S*$"), length(max = 2048))]
    pub success: String,
}

impl IndiaSale {
    pub fn parse(details: serde_json::Value, amount: Money) -> Result<Self, String> {
        let sale: IndiaSale = crate::contract::reason::parse(&details, "details")?;
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
    use crate::contract::methods::test_support::{inr, usd};
    use serde_json::json;

    use crate::contract::methods::test_support::india_sale_details as details;

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
