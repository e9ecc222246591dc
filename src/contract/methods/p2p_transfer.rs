//! The command's `details` for an epay P2P card-to-card transfer: the sender pays by
//! card (PAN, expiry, CVC, name) or a card saved with epay; the receiver gets it on a
//! card (PAN only) or a saved card.

use crate::contract::Money;
use crate::contract::card::{Card, CardShape, ReceiverCard};
use serde::Deserialize;
use std::net::IpAddr;

/// The command's `details` for a P2P transfer.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct P2pTransfer {
    #[schemars(pattern(r"\S"))]
    pub description: String,
    #[serde(default)]
    pub sender_ip: Option<IpAddr>,
    #[serde(default)]
    pub sender_email: Option<String>,
    #[serde(default)]
    pub back_link: Option<String>,
    #[serde(default)]
    pub failure_back_link: Option<String>,
    pub sender: Party<Card>,
    pub receiver: Party<ReceiverCard>,
}

/// One side of a transfer: exactly one of `card` and `card_id`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Party_{C}")]
#[schemars(extend("oneOf" = [
    {"type": "object", "required": ["card"], "properties": {"card": {"type": "object"}}},
    {"type": "object", "required": ["card_id"], "properties": {"card_id": {"type": "string"}}},
]))]
pub struct Party<C> {
    // Missing: `None` (serde's rule for an `Option`; `default` would ask `C: Default`).
    pub card: Option<C>,
    /// A card saved with epay (`TYPECARDID`).
    #[serde(default)]
    #[schemars(pattern(r"\S"), length(min = 1, max = 64))]
    pub card_id: Option<String>,
    /// Ask epay to save the card.
    #[serde(default)]
    pub save: bool,
}

impl<C: CardShape> Party<C> {
    fn check(&self, at: &str) -> Result<(), String> {
        match (&self.card, &self.card_id) {
            (Some(card), None) => card.check(&format!("{at}.card")),
            (None, Some(id)) if !id.trim().is_empty() && id.len() <= 64 => Ok(()),
            (None, Some(_)) => Err(format!("{at}.card_id must be 1 to 64 characters")),
            _ => Err(format!("{at} needs exactly one of card and card_id")),
        }
    }
}

impl P2pTransfer {
    pub fn parse(details: serde_json::Value, amount: Money) -> Result<Self, String> {
        let t: P2pTransfer = super::epay::parse_details(details, amount)?;
        if t.description.trim().is_empty() {
            return Err("details.description is required".into());
        }
        t.sender.check("details.sender")?;
        t.receiver.check("details.receiver")?;
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{Amount, Currency};
    use serde_json::json;

    fn kzt() -> Money {
        Money {
            minor: Amount::parse(10000).unwrap(),
            currency: Currency::KZT,
        }
    }

    fn details() -> serde_json::Value {
        json!({"description": "TEST p2p",
            "sender": {"card": {"pan": "4405639704015096", "expiry": {"month": "01", "year": "25"}, "cvc": "815", "name": "ARMAN ALI"}},
            "receiver": {"card_id": "86496cb0-bb5d-4791-bb49-cc27a0f660ce"}})
    }

    #[test]
    fn sender_and_receiver_are_checked_without_echoing_card_data() {
        assert!(P2pTransfer::parse(details(), kzt()).is_ok());
        let mut no_cvc = details();
        no_cvc["sender"]["card"]["cvc"] = json!("81a5");
        let e = P2pTransfer::parse(no_cvc, kzt()).unwrap_err();
        assert!(e.contains("cvc") && !e.contains("81a5"), "{e}");
        let mut both = details();
        both["receiver"]["card"] = json!({"pan": "5522042705066736"});
        assert!(
            P2pTransfer::parse(both, kzt())
                .unwrap_err()
                .contains("exactly one")
        );
    }

    #[test]
    fn a_receiver_card_with_more_than_a_pan_is_refused_without_echoing_it() {
        let mut ok = details();
        ok["receiver"] = json!({"card": {"pan": "5522042705066736"}});
        assert!(P2pTransfer::parse(ok, kzt()).is_ok());
        for (field, value) in [
            ("cvc", json!("525")),
            ("expiry", json!({"month": "01", "year": "25"})),
        ] {
            let mut d = details();
            d["receiver"] = json!({"card": {"pan": "5522042705066736", field: value}});
            let e = P2pTransfer::parse(d, kzt()).unwrap_err();
            assert!(
                e.contains("details.receiver.card") && e.contains(field),
                "{e}"
            );
            assert!(!e.contains("5522") && !e.contains("525"), "{e}");
        }
    }
}
