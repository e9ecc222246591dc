//! The demo's HomeBank payouts.

use super::send::Planned;
use payfleet::contract::{EventStatus, IdempotencyKey};
use serde_json::json;

/// The demo's mix, deterministic for a given run id.
pub fn plan(run: &str, count: usize) -> Vec<Planned> {
    (0..count)
        .map(|i| {
            let key = IdempotencyKey::parse(format!("demo-{run}-{i}")).expect("demo keys are valid");
            let (customer, amount, currency, phone, expect) = match i % 10 {
                6 => (format!("decline-{i}"), 5_000_00, "KZT", "77074544579", EventStatus::Declined),
                7 => match (i / 10) % 3 {
                    // Below 4,000.00 KZT only multiples of 2,000.00 are allowed.
                    0 => (format!("c{i}"), 3_000_00, "KZT", "77074544579", EventStatus::Rejected),
                    1 => (format!("c{i}"), 2_000_00, "KZT", "not-a-phone", EventStatus::Rejected),
                    _ => (format!("c{i}"), 10_000, "INR", "77074544579", EventStatus::Rejected),
                },
                n => {
                    let (amount, currency) = [(2_000_00, "KZT"), (7_000_00, "KZT"), (15_000, "USD"), (9_900, "EUR"), (250_000, "RUB")][n % 5];
                    (format!("c{i}"), amount, currency, "77074544579", EventStatus::Succeeded)
                }
            };
            let body = json!({
                "version": 1,
                "idempotency_key": key,
                "method": "homebank",
                "operation": "payout",
                "amount": { "minor": amount, "currency": currency },
                "details": { "customer": { "id": customer, "phone": phone, "ip_address": "10.1.2.3" } },
            });
            Planned {
                key,
                body: body.to_string(),
                routing_key: "ecommpay.payout",
                expect,
                copies: if i % 10 >= 8 { 2 } else { 1 },
            }
        })
        .collect()
}
