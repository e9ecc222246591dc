//! The command's `details` for `epay.confirm_3ds`: completing a 3-D Secure transfer.

use serde::Deserialize;

/// The command's `details` for `epay.confirm_3ds`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Confirm3ds {
    /// The transfer's invoice id: the `payment_id` of its `action_required` event.
    #[schemars(pattern(r"^[0-9]{6,15}$"))]
    pub invoice_id: String,
    /// The epay transaction id (`action.ID`).
    #[serde(rename = "ID")]
    #[schemars(length(min = 1))]
    pub id: String,
    /// The 3-D Secure result the card issuer's page posted back.
    #[serde(rename = "PaRes")]
    #[schemars(length(min = 1))]
    pub pa_res: String,
    /// The 3-D Secure session data the card issuer's page posted back.
    #[serde(rename = "MD")]
    #[schemars(length(min = 1))]
    pub md: String,
}

impl Confirm3ds {
    pub fn parse(details: serde_json::Value) -> Result<Self, String> {
        let c: Confirm3ds = crate::contract::reason::parse(&details, "details")?;
        let inv = &c.invoice_id;
        if !(6..=15).contains(&inv.len()) || !inv.bytes().all(|b| b.is_ascii_digit()) {
            return Err(
                "details.invoice_id must be the transfer's invoice id (6 to 15 digits)".into(),
            );
        }
        if c.id.is_empty() || c.pa_res.is_empty() || c.md.is_empty() {
            return Err("details.ID, details.PaRes and details.MD are required".into());
        }
        Ok(c)
    }
}
