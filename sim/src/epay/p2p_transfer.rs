//! `POST /p2p/transfer` (P2P document): `order` (amount, currency, description, id
//! "from 6 to 15 digits", terminalId, postLink, failurePostLink) and `card.sender` /
//! `card.receiver` (transferType "TYPEPAN" by card number or "TYPECARDID" by saved
//! card, cardCred; a sender's PAN comes with cvc and expire). The answer is the
//! document's "Success response" (`code: 0`, `status: AUTH`), `status: NEW` with
//! `secure3D` when the card asks for 3-D Secure, or its "Failure response".
//!
//! Card data (PAN, CVC) is never logged or stored: only the masked PAN is kept.

use super::answer::{self, CARD_DATA_INVALID, CARD_LOCKED, SCOPE_TRANSFER};
use super::book::Kind;
use super::token::is_invoice_id;
use super::{accept, authorise, bound_amount, decline, invalid, mask, new_txn, record};
use crate::Sandbox;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use std::sync::Arc;

pub const PATH: &str = "/p2p/transfer";

/// The document's test cards: PAN, expiry month, year, CVC, locked.
pub const TEST_CARDS: [(&str, &str, &str, &str, bool); 5] = [
    ("4405639704015096", "01", "25", "815", false),
    ("5522042705066736", "01", "25", "525", false),
    ("377514500004820", "01", "25", "4169", false),
    ("4003032704547597", "09", "20", "170", true),
    ("5578342710750560", "09", "20", "254", true),
];
/// The test card that asks for 3-D Secure.
pub const SECURE3D_PAN: &str = "5522042705066736";

#[derive(Deserialize)]
struct Body {
    order: Order,
    card: Cards,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Order {
    amount: Box<RawValue>,
    currency: String,
    description: String,
    id: String,
    terminal_id: String,
    #[serde(default)]
    post_link: String,
    #[serde(default)]
    failure_post_link: String,
}

#[derive(Deserialize)]
struct Cards {
    sender: Side,
    receiver: Side,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Side {
    transfer_type: String,
    card_cred: String,
    #[serde(default)]
    cvc: Option<String>,
    #[serde(default)]
    expire: Option<Expire>,
}

#[derive(Deserialize)]
struct Expire {
    month: String,
    year: String,
}

/// How a sender's card fares: `Ok(needs_3ds)` or a decline (code, reason).
fn judge(
    pan: &str,
    expire: Option<(&str, &str)>,
    cvc: Option<&str>,
) -> Result<bool, (i64, &'static str)> {
    let Some((_, month, year, want_cvc, locked)) = TEST_CARDS.iter().find(|c| c.0 == pan) else {
        return Ok(false);
    };
    if expire != Some((*month, *year)) || cvc != Some(*want_cvc) {
        Err((CARD_DATA_INVALID, "Card data is wrong"))
    } else if *locked {
        Err((CARD_LOCKED, "Card is locked"))
    } else {
        Ok(pan == SECURE3D_PAN)
    }
}

pub async fn handle(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Response {
    let what = "request body does not match the P2P transfer format";
    let body: Body = match accept(&sandbox, PATH, &raw, what) {
        Ok(b) => b,
        Err(a) => return a,
    };
    let o = &body.order;
    let grant = match authorise(&sandbox, &headers, Some(SCOPE_TRANSFER), Some(&o.id)) {
        Ok(g) => g,
        Err(a) => return a,
    };
    if o.terminal_id != sandbox.settings.epay_terminal_id {
        return answer::failure(
            StatusCode::BAD_REQUEST,
            answer::NOT_PERMITTED,
            "Not permitted to merchant",
            &o.id,
        );
    }
    if !is_invoice_id(&o.id) || o.description.trim().is_empty() {
        return invalid(
            &sandbox,
            "order.id must be 6 to 15 digits, with a description",
            &o.id,
        );
    }
    let amount = match bound_amount(&sandbox, &grant, &o.amount, &o.currency, &o.id) {
        Ok(a) => a,
        Err(a) => return a,
    };
    let (sender, receiver) = (&body.card.sender, &body.card.receiver);
    for side in [sender, receiver] {
        if !matches!(side.transfer_type.as_str(), "TYPEPAN" | "TYPECARDID")
            || side.card_cred.is_empty()
        {
            let m = "card.transferType must be TYPEPAN or TYPECARDID, with cardCred";
            return invalid(&sandbox, m, &o.id);
        }
    }
    let mut txn = new_txn(&grant, Kind::P2p, &o.id, amount, &o.description);
    txn.post_link = o.post_link.clone();
    txn.failure_post_link = o.failure_post_link.clone();
    let expire = sender
        .expire
        .as_ref()
        .map(|e| (e.month.as_str(), e.year.as_str()));
    if sender.transfer_type == "TYPEPAN" {
        if expire.is_none() || sender.cvc.is_none() {
            return invalid(
                &sandbox,
                "card.sender needs expire and cvc for TYPEPAN",
                &o.id,
            );
        }
        txn.card_mask = mask(&sender.card_cred);
        match judge(&sender.card_cred, expire, sender.cvc.as_deref()) {
            Ok(true) => super::ask_3ds(&mut txn),
            Ok(false) => {}
            Err((code, reason)) => decline(&mut txn, "FAILED", code, reason),
        }
    }
    let receiver_pan = if receiver.transfer_type == "TYPEPAN" {
        mask(&receiver.card_cred)
    } else {
        String::new()
    };
    let t = match record(&sandbox, txn) {
        Ok(t) => t,
        Err(a) => return a,
    };
    if !matches!(t.status, "AUTH" | "NEW") {
        return answer::failure(
            StatusCode::BAD_REQUEST,
            t.reason_code,
            &t.reason,
            &t.invoice_id,
        );
    }
    let mut out = answer::base(&t);
    out["orderID"] = json!(t.invoice_id);
    out["senderCardPAN"] = json!(t.card_mask);
    out["receiverCardPAN"] = json!(receiver_pan);
    out["code"] = json!(answer::SUCCESS);
    out["status"] = json!(t.status);
    if t.status == "NEW" {
        out["secure3D"] = answer::secure3d(&t);
    }
    (StatusCode::OK, Json(out)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documents_test_cards_behave() {
        assert_eq!(
            judge("4405639704015096", Some(("01", "25")), Some("815")),
            Ok(false)
        );
        assert_eq!(
            judge("5522042705066736", Some(("01", "25")), Some("525")),
            Ok(true)
        );
        assert_eq!(
            judge("4003032704547597", Some(("09", "20")), Some("170")).map_err(|e| e.0),
            Err(CARD_LOCKED)
        );
        assert_eq!(
            judge("4405639704015096", Some(("01", "26")), Some("815")).map_err(|e| e.0),
            Err(CARD_DATA_INVALID)
        );
        assert_eq!(
            judge("4111111111111111", Some(("01", "30")), Some("123")),
            Ok(false)
        );
    }

    #[test]
    fn pans_are_masked() {
        assert_eq!(mask("4003039802969821"), "4003********9821");
        assert_eq!(mask("123"), "****");
    }
}
