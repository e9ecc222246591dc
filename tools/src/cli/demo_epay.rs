//! The demo's Halyk epay part: Google Pay payments and P2P transfers (the P2P
//! document's test cards), some declined, some invalid, some through 3-D Secure, which
//! the demo completes the way a merchant's page would: it waits for the transfer's
//! `action_required` event and publishes `epay.confirm_3ds` with its ID and MD.

use super::send::{Abandoned, Outgoing, Planned, Seen, Sink};
use crate::local::EventTap;
use payfleet::contract::{EventStatus, IdempotencyKey};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn card(pan: &str, month: &str, year: &str, cvc: &str) -> Value {
    json!({"pan": pan, "expiry": {"month": month, "year": year}, "cvc": cvc, "name": "DEMO PAYER"})
}

fn transfer(key: &IdempotencyKey, minor: u64, sender: Value) -> Value {
    json!({
        "version": 1, "idempotency_key": key, "method": "p2p", "operation": "transfer",
        "amount": {"minor": minor, "currency": "KZT"},
        "details": {"description": "demo p2p", "sender": sender,
                    "receiver": {"card": {"pan": "377514500004820"}}},
    })
}

fn google_pay(key: &IdempotencyKey, minor: u64, last4: &str) -> Value {
    json!({
        "version": 1, "idempotency_key": key, "method": "google_pay", "operation": "payment",
        "amount": {"minor": minor, "currency": "KZT"},
        "details": {"name": "Demo payer", "description": "demo order", "card_save": false,
            "google_pay": {"apiVersion": 2, "apiVersionMinor": 0, "paymentMethodData": {
                "description": format!("Visa •••• {last4}"), "type": "CARD",
                "tokenizationData": {"type": "PAYMENT_GATEWAY", "token": "{\"protocolVersion\":\"ECv2\"}"},
                "info": {"cardNetwork": "VISA", "cardDetails": last4}}}},
    })
}

const CONFIRM_SUFFIX: &str = "-3ds";

/// The key of the confirmation the demo publishes for a 3-D Secure transfer.
fn confirm_key(key: &IdempotencyKey) -> IdempotencyKey {
    IdempotencyKey::parse(format!("{key}{CONFIRM_SUFFIX}")).expect("demo keys are valid")
}

/// The transfer a confirmation's key confirms.
pub fn confirmed_transfer(key: &IdempotencyKey) -> Option<IdempotencyKey> {
    let transfer = key.as_str().strip_suffix(CONFIRM_SUFFIX)?;
    IdempotencyKey::parse(transfer).ok()
}

/// The planned confirmations, each with its transfer's key and body.
pub fn confirmations(planned: &[Planned]) -> Vec<Confirmation> {
    planned
        .iter()
        .filter(|p| p.routing_key == "epay.confirm_3ds")
        .filter_map(|c| {
            let transfer = confirmed_transfer(&c.key)?;
            let t = planned.iter().find(|p| p.key == transfer)?;
            Some(Confirmation {
                key: c.key.clone(),
                transfer: t.key.clone(),
                transfer_body: t.body.clone(),
            })
        })
        .collect()
}

pub struct Confirmation {
    key: IdempotencyKey,
    transfer: IdempotencyKey,
    transfer_body: String,
}

/// `count` epay commands. Each 3-D Secure transfer brings its confirmation, planned
/// with no copies (published once its data is known).
pub fn plan(run: &str, count: usize) -> Vec<Planned> {
    let mut planned = Vec::new();
    for i in 0.. {
        if planned.len() >= count {
            break;
        }
        let key =
            IdempotencyKey::parse(format!("demo-{run}-epay-{i}")).expect("demo keys are valid");
        let minor = 1_000_00 + 1_17 * i as u64;
        // A 3-D Secure transfer is two commands: the last slot takes a plain payment.
        let case = if i % 6 == 5 && planned.len() + 2 > count {
            0
        } else {
            i % 6
        };
        let (body, routing_key, expect) = match case {
            0 | 3 => (
                google_pay(&key, minor, "1111"),
                "epay.payment",
                EventStatus::Succeeded,
            ),
            1 => (
                transfer(
                    &key,
                    minor,
                    json!({"card": card("4405639704015096", "01", "25", "815")}),
                ),
                "epay.transfer",
                EventStatus::Succeeded,
            ),
            2 => (
                transfer(
                    &key,
                    minor,
                    json!({"card": card("4003032704547597", "09", "20", "170")}),
                ),
                "epay.transfer",
                EventStatus::Declined,
            ),
            4 => {
                let mut body = transfer(
                    &key,
                    minor,
                    json!({"card": card("5522042705066736", "01", "25", "525")}),
                );
                body["details"]["sender"]["card"]["cvc"] = json!(525);
                (body, "epay.transfer", EventStatus::Rejected)
            }
            _ => {
                planned.push(Planned {
                    key: confirm_key(&key),
                    body: String::new(),
                    routing_key: "epay.confirm_3ds",
                    expect: EventStatus::Succeeded,
                    copies: 0,
                });
                (
                    transfer(
                        &key,
                        minor,
                        json!({"card": card("5522042705066736", "01", "25", "525")}),
                    ),
                    "epay.transfer",
                    EventStatus::Succeeded,
                )
            }
        };
        planned.push(Planned {
            key,
            body: body.to_string(),
            routing_key,
            expect,
            // A fifth published twice, like the rest of the mix.
            copies: if i % 5 == 4 { 2 } else { 1 },
        });
    }
    planned
}

/// Publishes the confirmation of every planned 3-D Secure transfer once its
/// `action_required` event shows up (none for a transfer that ended without asking);
/// returns how many it published.
pub async fn confirm_3ds<S: Sink>(
    tap: &EventTap,
    sink: &S,
    mut waiting: Vec<Confirmation>,
    timeout: Duration,
    abandoned: &Abandoned,
) -> usize {
    let deadline = Instant::now() + timeout;
    let mut seen = Seen::default();
    let mut published = 0;
    while !waiting.is_empty() && Instant::now() < deadline {
        seen.update(tap);
        let mut still = Vec::new();
        for c in waiting {
            let Some(asked) = seen.asked.get(&c.transfer) else {
                let gave_up = abandoned
                    .lock()
                    .expect("abandoned lock")
                    .contains(&c.transfer);
                if !seen.terminal.contains_key(&c.transfer) && !gave_up {
                    still.push(c);
                }
                continue;
            };
            let action = asked.action.clone().unwrap_or_default();
            let amount = serde_json::from_str::<Value>(&c.transfer_body)
                .map(|b| b["amount"].clone())
                .unwrap_or_default();
            let body = json!({
                "version": 1, "idempotency_key": c.key, "method": "p2p", "operation": "confirm_3ds",
                "amount": amount,
                "details": {"invoice_id": asked.payment_id, "ID": action["ID"], "MD": action["MD"],
                            // What the customer's bank would post to TermUrl.
                            "PaRes": "demo-pares"},
            });
            let body = body.to_string();
            let sent = sink
                .send(Outgoing {
                    key: &c.key,
                    routing_key: "epay.confirm_3ds",
                    body: body.as_bytes(),
                })
                .await;
            match sent {
                Ok(()) => published += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "demo: cannot publish a 3-D Secure confirmation yet");
                    still.push(c);
                }
            }
        }
        waiting = still;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    published
}
