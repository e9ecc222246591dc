//! P2P card-to-card transfer: `POST {api}/p2p/transfer` under a `transfer`-scope token.
//! The sender pays by card (PAN, expiry, CVC, name) or a card saved with epay; the
//! receiver gets it on a card (PAN) or a saved card.

use super::Epay;
use super::amount::EpayAmount;
use super::token::Transaction;
use crate::contract::card::Card;
use crate::contract::methods::P2pTransfer;
use crate::contract::methods::p2p_transfer::Party;
use crate::providers::{ProviderError, Submission};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

pub const PATH: &str = "/p2p/transfer";

impl P2pTransfer {
    pub async fn submit(
        &self,
        epay: &Epay,
        tx: Transaction<'_>,
    ) -> Result<Submission, ProviderError> {
        let (invoice_id, amount) = (tx.invoice_id, tx.amount);
        let s = &epay.api.settings;
        let body = Request {
            order: Order {
                amount: EpayAmount::of(amount),
                currency: amount.currency.code(),
                description: &self.description,
                merchant_id_for_saving_cards: "",
                id: invoice_id,
                sender_ip: self.sender_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                sender_email: self.sender_email.as_deref().unwrap_or_default(),
                foreign: false,
                terminal_id: &s.terminal_id,
                back_link: self.back_link.as_deref().unwrap_or_default(),
                failure_back_link: self.failure_back_link.as_deref().unwrap_or_default(),
                post_link: &s.post_link_url,
                failure_post_link: &s.failure_post_link_url,
            },
            card: Cards {
                sender: sender(&self.sender),
                receiver: side(&self.receiver, |c| &c.pan),
            },
        };
        let body = serde_json::to_vec(&body).expect("the request serialises");
        epay.transact(super::codes::SCOPE_TRANSFER, PATH, tx, body)
            .await
    }
}

/// One side in the document's shape, by its card's PAN or its saved card; card data is
/// exposed only into this body.
fn side<C>(p: &Party<C>, pan: impl Fn(&C) -> &SecretString) -> Side<'_> {
    let (transfer_type, cred) = match (&p.card, &p.card_id) {
        (Some(card), _) => ("TYPEPAN", pan(card).expose_secret()),
        (None, id) => ("TYPECARDID", id.as_deref().unwrap_or_default()),
    };
    Side {
        save: p.save,
        transfer_type,
        card_cred: cred,
        cvc: None,
        expire: None,
        name: None,
        id: "",
        address: "",
        number: "",
    }
}

/// The paying side: with a card, its expiry, CVC and holder's name as well.
fn sender(p: &Party<Card>) -> Side<'_> {
    let mut side = side(p, |c| &c.pan);
    if let Some(card) = &p.card {
        side.cvc = card.cvc.as_ref().map(|c| c.expose_secret());
        side.expire = card.expiry.as_ref().map(|e| Expire {
            month: e.month.expose_secret(),
            year: e.year.expose_secret(),
        });
        side.name = card.name.as_ref().map(|n| n.expose_secret());
    }
    side
}

#[derive(Serialize)]
struct Request<'a> {
    order: Order<'a>,
    card: Cards<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Order<'a> {
    amount: EpayAmount,
    currency: &'a str,
    description: &'a str,
    merchant_id_for_saving_cards: &'a str,
    id: &'a str,
    #[serde(rename = "senderIP")]
    sender_ip: String,
    sender_email: &'a str,
    foreign: bool,
    terminal_id: &'a str,
    back_link: &'a str,
    failure_back_link: &'a str,
    post_link: &'a str,
    failure_post_link: &'a str,
}

#[derive(Serialize)]
struct Cards<'a> {
    sender: Side<'a>,
    receiver: Side<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Side<'a> {
    save: bool,
    transfer_type: &'a str,
    card_cred: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cvc: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expire: Option<Expire<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    id: &'a str,
    address: &'a str,
    number: &'a str,
}

#[derive(Serialize)]
struct Expire<'a> {
    month: &'a str,
    year: &'a str,
}
