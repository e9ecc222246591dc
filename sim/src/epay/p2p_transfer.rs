//! `POST /p2p/transfer`, as the P2P document describes it.

use super::{
    Answer, accept, authorise, bound_amount, decline, invalid, mask, new_txn, payment_answer,
    record,
};
use crate::Sandbox;
use axum::extract::State;
use axum::http::HeaderMap;
use payfleet::providers::epay::{codes, p2p_transfer};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::sync::Arc;

pub const PATH: &str = p2p_transfer::PATH;

/// The P2P document's test cards: PAN, expiry (MM, YY), CVC, locked.
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

pub async fn handle(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Answer {
    let body: Body = match accept(
        &sandbox,
        PATH,
        &raw,
        "request body does not match the P2P transfer format",
    ) {
        Ok(b) => b,
        Err(a) => return a,
    };
    let o = &body.order;
    let grant = match authorise(&sandbox, &headers, Some(codes::SCOPE_TRANSFER), Some(&o.id)) {
        Ok(g) => g,
        Err(a) => return a,
    };
    if o.terminal_id != sandbox.settings.epay_terminal_id {
        return invalid(&sandbox, "order.terminalId is wrong", &o.id);
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
            return invalid(
                &sandbox,
                "card.transferType must be TYPEPAN or TYPECARDID with cardCred",
                &o.id,
            );
        }
    }
    let mut txn = new_txn(&grant, &o.id, amount, &o.description);
    txn.post_link = o.post_link.clone();
    txn.failure_post_link = o.failure_post_link.clone();
    if sender.transfer_type == "TYPEPAN" {
        txn.card_mask = mask(&sender.card_cred);
        let given = (
            sender
                .expire
                .as_ref()
                .map(|e| (e.month.as_str(), e.year.as_str())),
            sender.cvc.as_deref(),
        );
        if let Some((_, month, year, cvc, locked)) =
            TEST_CARDS.iter().find(|c| c.0 == sender.card_cred)
        {
            if given != (Some((*month, *year)), Some(*cvc)) {
                decline(
                    &mut txn,
                    "FAILED",
                    codes::CARD_DATA_INVALID,
                    "Card data is wrong",
                );
            } else if *locked {
                decline(&mut txn, "FAILED", codes::CARD_LOCKED, "Card is locked");
            } else if sender.card_cred == SECURE3D_PAN {
                txn.status = "NEW";
                txn.md = Some(format!("{}-{}", txn.invoice_id, &txn.id[..8]));
            }
        } else if given.0.is_none() || given.1.is_none() {
            return invalid(
                &sandbox,
                "card.sender needs expire and cvc for TYPEPAN",
                &o.id,
            );
        }
    }
    match record(&sandbox, txn) {
        Ok(t) => payment_answer(
            &t,
            serde_json::json!({ "orderID": t.invoice_id, "senderCardPAN": t.card_mask }),
        ),
        Err(a) => a,
    }
}
