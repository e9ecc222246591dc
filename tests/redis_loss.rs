//! Redis losing everything while payments are open (found by the chaos run's mix):
//! Halyk epay retries a payment under the same invoice id, so it is never paid a second
//! time; a Banks of India purchase whose retry found it waiting for its customer still
//! has a reminder in the broker, so it is settled even when its callback is lost.
//! (Only this fleet's own keys are deleted: the Redis is shared.)

mod common;

use common::spawn_app_with;
use payfleet::contract::EventStatus;
use payfleet_sim::Faults;
use payfleet_sim::ecommpay::india_sale::act_as_customer;
use payfleet_sim::faults::CallbackFaults;
use serde_json::json;
use std::time::{Duration, Instant};

const GOOGLE_PAY_ENDPOINT: &str = "POST /payment/cryptopay";

fn google_pay(key: &str) -> String {
    json!({
        "version": 1, "idempotency_key": key, "method": "google_pay", "operation": "payment",
        "amount": {"minor": 5_000_00, "currency": "KZT"},
        "details": {"name": "Test test", "description": "order", "card_save": false,
            "google_pay": {"apiVersion": 2, "apiVersionMinor": 0, "paymentMethodData": {
                "description": "Visa •••• 1111", "type": "CARD",
                "tokenizationData": {"type": "PAYMENT_GATEWAY", "token": "{\"protocolVersion\":\"ECv2\"}"},
                "info": {"cardNetwork": "VISA", "cardDetails": "1111"}}}},
    })
    .to_string()
}

/// Deletes every key of this fleet's prefix, as a Redis restart without data would.
async fn lose_redis_data(url: &str, prefix: &str) -> usize {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    for k in &keys {
        let _: () = redis::cmd("DEL")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    keys.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_retried_after_redis_lost_its_invoice_id_is_not_paid_twice() {
    let mut s = common::settings("t-epay-wiped");
    s.reconciler.time_scale = 0.001;
    // Only the worker's retry settles it, after a pause long enough to wipe Redis.
    s.reconciler.embedded = false;
    s.worker.retry_delays_ms = vec![3000];
    s.epay.request_timeout_ms = 1000;
    let app = spawn_app_with(s, 1).await;
    // epay pays, then the answer is lost; the postLink too.
    app.fleet
        .sandbox
        .set_faults(common::answers_lost(GOOGLE_PAY_ENDPOINT, true));
    app.publish(&google_pay("gp-wiped")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.fleet.sandbox.stats().executed.is_empty() {
        assert!(Instant::now() < deadline, "epay never paid");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the worker park its retry, then lose Redis's data before it comes back.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = &app.fleet.settings;
    assert!(lose_redis_data(s.redis.url.first(), &s.redis.key_prefix).await > 0);
    app.fleet.sandbox.set_faults(Faults::default());
    let event = app.terminal("gp-wiped").await;
    assert_eq!(event.status, EventStatus::Succeeded, "{event:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = app.fleet.sandbox.stats();
    assert_eq!(
        stats.executed.values().sum::<u64>(),
        1,
        "paid once, under one invoice id: {stats:?}"
    );
    assert_eq!(
        event
            .payment_id
            .as_ref()
            .and_then(|i| stats.executed.get(i)),
        Some(&1),
        "the event names the invoice that was paid: {stats:?}"
    );
    assert!(stats.duplicate_submissions_refused >= 1, "{stats:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_purchase_whose_retry_found_it_waiting_is_settled_after_redis_lost_it() {
    let mut s = common::settings("t-boi-wiped");
    s.reconciler.time_scale = 0.001;
    // No reconciler: it cannot see a record Redis lost; only the broker's reminder can.
    s.reconciler.embedded = false;
    let app = spawn_app_with(s, 1).await;
    // Gate accepts the purchase but the answer is lost: the worker parks a retry, and
    // the redirect callback arrives before it, so the retry finds the purchase waiting.
    app.fleet.sandbox.set_faults(common::answers_lost(
        "POST /v2/payment/banks/india/sale",
        false,
    ));
    let key = "boi-wiped";
    app.publish(
        &json!({
            "version": 1, "idempotency_key": key, "method": "banks_of_india", "operation": "sale",
            "amount": {"minor": 1_500_00, "currency": "INR"},
            "details": {"customer": {"id": "c1", "ip_address": "1.2.3.4", "email": "b@example.com",
                                     "city": "Mumbai", "zip": "400009"},
                        "return_url": {"success": "https://shop.example/return"}, "bank_id": 403}
        })
        .to_string(),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let action = loop {
        let asked = app
            .events_for(key)
            .into_iter()
            .find(|e| e.status == EventStatus::ActionRequired);
        if let Some(e) = asked {
            break e.action.expect("a redirect");
        }
        assert!(Instant::now() < deadline, "never asked for the customer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The retry (300 ms) comes back and finds the purchase waiting for its customer.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Redis loses everything; the customer pays; the final callback is lost.
    app.fleet.sandbox.set_faults(Faults {
        callbacks: CallbackFaults {
            loss_rate: 1.0,
            ..Default::default()
        },
        ..Default::default()
    });
    let s = &app.fleet.settings;
    assert!(lose_redis_data(s.redis.url.first(), &s.redis.key_prefix).await > 0);
    let page = act_as_customer(&reqwest::Client::new(), &action, "success", 403).await;
    assert_eq!(page.unwrap(), 200, "the customer paid at the bank page");
    let event = app.terminal(key).await;
    assert_eq!(event.status, EventStatus::Succeeded, "{event:?}");
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.get(key), Some(&1), "paid once: {stats:?}");
    app.stop().await;
}
