//! The demo's Banks of India share: purchases that a simulated customer completes or
//! declines on the sandbox's bank pages, payouts (some held for the provider's working
//! hours) and refunds of the purchases once they are paid.
//!
//! Payouts cannot wait for real working hours in a demo, so the demo shifts the
//! provider clock (worker and sandbox alike) to a few seconds before the window opens
//! on a Monday: the first payouts are deferred and go out when it opens.

use super::send::{Planned, Seen, Sink, send_all};
use crate::local::EventTap;
use chrono::{DateTime, Utc};
use payfleet::contract::{EventStatus, IdempotencyKey};
use payfleet::providers::ecommpay::india_hours::OffsetClock;
use payfleet_sim::ecommpay::india_sale::act_as_customer;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// How long after the demo starts the provider's payout window opens.
pub const OPENS_IN: Duration = Duration::from_secs(8);

/// When a command is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wave {
    /// At once (payouts among them are deferred).
    Now,
    /// Once the payout window is open.
    WindowOpen,
    /// Once the purchase it refunds has been paid.
    AfterPurchase,
}

pub struct IndiaPlanned {
    pub planned: Planned,
    wave: Wave,
    /// For purchases: what the customer does at the bank, if asked to.
    customer: Option<&'static str>,
    /// For refunds: the purchase refunded.
    refunds: Option<IdempotencyKey>,
}

/// What the Banks of India share did, for the summary.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub purchases: usize,
    pub payouts: usize,
    pub refunds: usize,
    /// Purchases the simulated customer completed or declined at the bank page.
    pub completed_at_the_bank: usize,
    /// Payouts that arrived outside the provider's working hours and were held.
    pub deferred_payouts: usize,
    pub note: String,
}

/// The clock offset (ms) that puts the provider's clock `opens_in` before Monday 10:30
/// GMT+8, and the moment the window opens in real time.
pub fn clock(opens_in: Duration) -> (i64, Instant) {
    let opens: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-30T10:30:00+08:00")
        .expect("a valid moment")
        .with_timezone(&Utc);
    let start = opens - chrono::Duration::from_std(opens_in).expect("small");
    let offset = OffsetClock::reading(start).offset.num_milliseconds();
    (offset, Instant::now() + opens_in)
}

fn command(
    key: &IdempotencyKey,
    operation: &str,
    minor: u64,
    currency: &str,
    details: Value,
) -> String {
    json!({
        "version": 1, "idempotency_key": key, "method": "banks_of_india", "operation": operation,
        "amount": { "minor": minor, "currency": currency }, "details": details,
    })
    .to_string()
}

fn sale(customer: &str, bank_id: Option<u32>) -> Value {
    let mut d = json!({
        "customer": { "id": customer, "ip_address": "10.1.2.3", "email": "buyer@example.com",
                      "city": "Mumbai", "zip": "400009" },
        "return_url": { "success": "https://shop.example/return" },
    });
    if let Some(id) = bank_id {
        d["bank_id"] = json!(id);
    }
    d
}

fn payout(name: &str) -> Value {
    json!({
        "customer": { "id": "p1", "ip_address": "10.1.2.3" },
        "account": { "number": "5588994446666", "bank_code": "SBIN0000123", "bank_id": 403, "customer_name": name },
    })
}

/// The mix, deterministic for a run id: per ten commands three paid purchases (two
/// with the bank chosen, one at the selection page), one declined at the bank, one
/// declined by the provider, two payouts arriving before the window opens (one
/// declined), one after, one refund of a paid purchase and one invalid payout; a
/// purchase and the refund are published twice.
pub fn plan(run: &str, count: usize) -> Vec<IndiaPlanned> {
    let key = |i: usize| {
        IdempotencyKey::parse(format!("demo-{run}-boi-{i}")).expect("demo keys are valid")
    };
    (0..count)
        .map(|i| {
            let k = key(i);
            let minor = 1_500_00 + 100 * i as u64;
            let (body, routing_key, expect, wave, customer, refunds) = match i % 10 {
                n @ 0..=2 => {
                    let bank = (n < 2).then_some(401 + n as u32);
                    (
                        command(&k, "sale", minor, "INR", sale(&format!("c{i}"), bank)),
                        "ecommpay.sale",
                        EventStatus::Succeeded,
                        Wave::Now,
                        Some("success"),
                        None,
                    )
                }
                3 => (
                    command(&k, "sale", minor, "INR", sale(&format!("c{i}"), Some(412))),
                    "ecommpay.sale",
                    EventStatus::Declined,
                    Wave::Now,
                    Some("decline"),
                    None,
                ),
                4 => (
                    command(
                        &k,
                        "sale",
                        minor,
                        "INR",
                        sale(&format!("decline-{i}"), None),
                    ),
                    "ecommpay.sale",
                    EventStatus::Declined,
                    Wave::Now,
                    None,
                    None,
                ),
                5 => (
                    command(&k, "payout", minor, "INR", payout("Asha Rao")),
                    "ecommpay.payout",
                    EventStatus::Succeeded,
                    Wave::Now,
                    None,
                    None,
                ),
                6 => (
                    command(&k, "payout", minor, "INR", payout("decline Rao")),
                    "ecommpay.payout",
                    EventStatus::Declined,
                    Wave::Now,
                    None,
                    None,
                ),
                7 => (
                    command(&k, "payout", minor, "INR", payout("Vikram Rao")),
                    "ecommpay.payout",
                    EventStatus::Succeeded,
                    Wave::WindowOpen,
                    None,
                    None,
                ),
                // Refunds the purchase two before it, which is paid at the bank.
                8 => {
                    let purchase = key(i - 8);
                    let details =
                        json!({ "payment_id": purchase, "description": "returned goods" });
                    (
                        command(
                            &k,
                            "refund",
                            1_500_00 + 100 * (i - 8) as u64,
                            "INR",
                            details,
                        ),
                        "ecommpay.refund",
                        EventStatus::Succeeded,
                        Wave::AfterPurchase,
                        None,
                        Some(purchase),
                    )
                }
                // Below the 1,000.00 INR payout minimum.
                _ => (
                    command(&k, "payout", 999_99, "INR", payout("Too Little")),
                    "ecommpay.payout",
                    EventStatus::Rejected,
                    Wave::Now,
                    None,
                    None,
                ),
            };
            IndiaPlanned {
                planned: Planned {
                    key: k,
                    body,
                    routing_key,
                    expect,
                    // A purchase and a refund published twice, like a fifth of the mix.
                    copies: if i % 10 == 1 || i % 10 == 8 { 2 } else { 1 },
                },
                wave,
                customer,
                refunds,
            }
        })
        .collect()
}

/// Publishes the share wave by wave and plays the customers, until every command was
/// published and every customer asked has acted (or `timeout`); returns what it did
/// and the publishes. The caller then waits for the terminal events.
pub async fn drive<S: Sink>(
    sink: &S,
    tap: &EventTap,
    plan: &[IndiaPlanned],
    window_opens: Instant,
    timeout: Duration,
) -> anyhow::Result<(Report, usize)> {
    let deadline = Instant::now() + timeout;
    let (published, acted) = tokio::join!(
        publish_waves(sink, tap, plan, window_opens, deadline),
        play_customers(tap, plan, deadline),
    );
    let count = |op: &str| {
        plan.iter()
            .filter(|p| p.planned.routing_key.ends_with(op))
            .count()
    };
    let report = Report {
        purchases: count(".sale"),
        payouts: count(".payout"),
        refunds: count(".refund"),
        completed_at_the_bank: acted?,
        deferred_payouts: 0,
        note: String::new(),
    };
    Ok((report, published?))
}

/// Publishes each command once its wave is due: at once, once the payout window is
/// open, or once the purchase it refunds has ended.
async fn publish_waves<S: Sink>(
    sink: &S,
    tap: &EventTap,
    plan: &[IndiaPlanned],
    window_opens: Instant,
    deadline: Instant,
) -> anyhow::Result<usize> {
    let mut seen = Seen::default();
    let mut waiting: Vec<&IndiaPlanned> = plan.iter().collect();
    let mut published = 0;
    while !waiting.is_empty() && Instant::now() < deadline {
        seen.update(tap);
        let (ready, later): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|p| match p.wave {
            Wave::Now => true,
            Wave::WindowOpen => Instant::now() > window_opens + Duration::from_secs(1),
            Wave::AfterPurchase => p
                .refunds
                .as_ref()
                .is_some_and(|k| seen.terminal.contains_key(k)),
        });
        waiting = later;
        published += send_all(sink, ready.into_iter().map(|p| &p.planned)).await?;
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(published)
}

/// Acts as the customer of every purchase that asks for one (follows its redirect to
/// the bank page, pays or declines); returns how many acted. A purchase that ended
/// without asking needs no customer.
async fn play_customers(
    tap: &EventTap,
    plan: &[IndiaPlanned],
    deadline: Instant,
) -> anyhow::Result<usize> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut seen = Seen::default();
    let mut waiting: Vec<&IndiaPlanned> = plan.iter().filter(|p| p.customer.is_some()).collect();
    let mut acted = 0;
    while !waiting.is_empty() && Instant::now() < deadline {
        seen.update(tap);
        let mut still = Vec::new();
        for p in waiting {
            let key = &p.planned.key;
            let Some(action) = seen.asked.get(key).and_then(|e| e.action.as_ref()) else {
                if !seen.terminal.contains_key(key) {
                    still.push(p);
                }
                continue;
            };
            let result = p.customer.expect("filtered");
            match act_as_customer(&http, action, result, 406).await {
                Ok(_) => acted += 1,
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "demo: the bank page did not answer");
                    still.push(p);
                }
            }
        }
        waiting = still;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(acted)
}

/// Counts the deferred payouts (after the run) and says what happened to them.
pub fn explain(report: &mut Report, tap: &EventTap, plan: &[IndiaPlanned]) {
    let keys: HashSet<&IdempotencyKey> = plan.iter().map(|p| &p.planned.key).collect();
    report.deferred_payouts = tap
        .events()
        .iter()
        .filter(|e| e.status == EventStatus::Deferred && keys.contains(&e.idempotency_key))
        .map(|e| e.idempotency_key.clone())
        .collect::<HashSet<_>>()
        .len();
    report.note = format!(
        "the provider pays out Mon-Fri 10:30-19:00 GMT+8 only; the demo's provider clock \
         starts at Monday 10:29:{:02} GMT+8, so {} payouts published at once were deferred \
         (a `deferred` event, held in the delay queues) and sent when the window opened \
         {} s later; payouts published after that went at once",
        60 - OPENS_IN.as_secs(),
        report.deferred_payouts,
        OPENS_IN.as_secs()
    );
}
