//! Commands a hostile or careless publisher might send, over the real broker and
//! Redis: headers larger than a small frame, card numbers where they do not belong,
//! numbers beyond range. Each is answered (or dead-lettered) with a reason that quotes
//! nothing, and no other command waits on it.

mod common;

use common::logs::captured_logs;
use common::{TestFleet, payout, spawn_app};
use lapin::types::FieldTable;
use payfleet::bus::{self, Publisher, header_text};
use payfleet::contract::EventStatus;
use serde_json::{Value, json};
use std::time::Duration;

const PAN: &str = "4405639704015096";
const PAN_GROUPED: &str = "4405 6397 0401 5096";
const PAN_DASHED: &str = "4405-6397-0401-5096";
const CVC: &str = "815";

/// Headers of about `bytes` bytes on the wire.
fn headers_of(bytes: usize) -> FieldTable {
    let mut h = FieldTable::default();
    h.insert("x-padding".into(), header_text(&"p".repeat(bytes)));
    h
}

/// A publisher on a connection with the broker's frame size, as a publisher that is not
/// payfleet's may have: it can send headers that do not fit in payfleet's usual frames.
async fn wide_publisher(app: &TestFleet) -> (lapin::Connection, Publisher) {
    let conn = bus::connect_consuming(&app.fleet.settings.amqp.url, "test-wide")
        .await
        .unwrap();
    let publisher = Publisher::open(&conn, app.fleet.names()).await.unwrap();
    (conn, publisher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_with_20_kib_of_headers_is_handled_and_others_flow() {
    let app = spawn_app("t-hostile-headers", 1).await;
    let (conn, wide) = wide_publisher(&app).await;
    let big = payout("big-headers", 200_000, "KZT", "444567");
    wide.publish_command("ecommpay.payout", big.as_bytes(), headers_of(20 * 1024))
        .await
        .expect("the broker takes 20 KiB of headers");
    let others: Vec<String> = (0..10).map(|i| format!("beside-big-{i}")).collect();
    for key in &others {
        app.publish(&payout(key, 200_000, "KZT", "444567")).await;
    }
    // Before: the worker's 8 KiB frames could not hold the content header, the
    // connection closed on every delivery and the command never finished.
    assert_eq!(
        app.terminal("big-headers").await.status,
        EventStatus::Succeeded
    );
    for key in &others {
        assert_eq!(app.terminal(key).await.status, EventStatus::Succeeded);
    }
    // Headers larger than a worker can carry on (it republishes with them) are
    // dead-lettered by the worker, redacted, with a reason, not left to the broker.
    let room = wide.header_room();
    let mut too_big =
        serde_json::from_str::<Value>(&payout("too-big", 200_000, "KZT", "1")).unwrap();
    too_big["details"]["customer"]["id"] = json!(PAN_GROUPED);
    wide.publish_command(
        "ecommpay.payout",
        too_big.to_string().as_bytes(),
        headers_of(room + 200),
    )
    .await
    .expect("the broker takes them: they fit its frame");
    let dead = app.dead.wait_for(1).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let (body, reason) = &dead[0];
    assert!(reason.contains("AMQP headers take"), "{reason}");
    let body = String::from_utf8_lossy(body);
    assert!(body.contains("too-big") && !body.contains("4405"), "{body}");
    assert!(app.events_for("too-big").is_empty());
    app.publish(&payout("after-too-big", 200_000, "KZT", "444567"))
        .await;
    assert_eq!(
        app.terminal("after-too-big").await.status,
        EventStatus::Succeeded
    );
    wide.close().await;
    let _ = conn.close(200, "bye".into()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_400_digit_amount_is_rejected_with_a_reason() {
    let app = spawn_app("t-hostile-amount", 1).await;
    let body = payout("huge-amount", 1, "KZT", "444567")
        .replace("\"minor\":1", &format!("\"minor\":{}", "9".repeat(400)));
    assert!(body.contains(&"9".repeat(400)));
    app.publish_raw("ecommpay.payout", body.as_bytes()).await;
    let event = app.terminal("huge-amount").await;
    assert_eq!(event.status, EventStatus::Rejected);
    assert_eq!(
        event.reason.as_deref(),
        Some("amount.minor: a number out of range")
    );
    app.stop().await;
}

fn p2p(key: &str, details: Value) -> String {
    json!({
        "version": 1, "idempotency_key": key, "method": "p2p", "operation": "transfer",
        "amount": {"minor": 40_000, "currency": "KZT"}, "details": details
    })
    .to_string()
}

fn transfer(sender_card: Value, receiver: Value) -> Value {
    json!({"description": "TEST p2p", "sender": {"card": sender_card}, "receiver": receiver})
}

fn visa() -> Value {
    json!({"pan": PAN, "expiry": {"month": "01", "year": "25"}, "cvc": CVC, "name": "ARMAN ALI"})
}

/// Where the test PAN (in any of its spellings) or CVC shows up in `text`.
fn card_data_in(text: &str) -> Vec<&'static str> {
    let squeezed: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '_' | ':'))
        .collect();
    let mut found = Vec::new();
    if squeezed.contains(PAN) {
        found.push("PAN");
    }
    if [
        format!("\"{CVC}\""),
        format!("`{CVC}`"),
        format!("\\\"{CVC}\\\""),
    ]
    .iter()
    .any(|q| text.contains(q))
    {
        found.push("CVC");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_card_inputs_are_refused_and_never_echoed() {
    let logs = captured_logs();
    let app = spawn_app("t-hostile-cards", 1).await;
    let receiver = json!({"card": {"pan": "377514500004820"}});
    let mut expiry_numbers = visa();
    expiry_numbers["expiry"] = json!({"month": 1, "year": 25});
    let mut grouped_elsewhere: Value =
        serde_json::from_str(&p2p("h-grouped", transfer(visa(), receiver.clone()))).unwrap();
    grouped_elsewhere["operation"] = json!("44 05 63 97 04 01 50 96");
    let rejected = [
        (
            p2p("h-expiry", transfer(expiry_numbers, receiver.clone())),
            "details.sender.card.expiry.month: expected a string, got a number",
        ),
        (grouped_elsewhere.to_string(), "operation: expected one of"),
        (
            p2p(
                "h-receiver",
                transfer(
                    visa(),
                    json!({"card": {"pan": PAN, "cvc": CVC, "expiry": {"month": "01", "year": "25"}}}),
                ),
            ),
            "details.receiver.card.",
        ),
        (
            p2p(
                "h-array",
                transfer(
                    json!([PAN, {"month": "01", "year": "25"}, CVC, "A"]),
                    receiver.clone(),
                ),
            ),
            "details.sender.card must not be an array",
        ),
    ];
    for (body, _) in &rejected {
        app.publish_raw("epay.transfer", body.as_bytes()).await;
    }
    // Dead letters: a broken body with a PAN in free text, and a conflicting copy of a
    // rejected command with a PAN in its description.
    app.publish_raw(
        "epay.transfer",
        format!("{{\"idempotency_key\": \"h-broken\", \"note\": \"{PAN_GROUPED}\"").as_bytes(),
    )
    .await;
    for (body, expected) in &rejected {
        let key = serde_json::from_str::<Value>(body).unwrap()["idempotency_key"]
            .as_str()
            .unwrap()
            .to_owned();
        let event = app.terminal(&key).await;
        assert_eq!(event.status, EventStatus::Rejected, "{key}");
        let reason = event.reason.unwrap_or_default();
        assert!(reason.contains(expected), "{key}: {reason}");
    }
    let mut conflicting = transfer(visa(), receiver.clone());
    conflicting["description"] = json!(format!("card {PAN_GROUPED}"));
    app.publish_raw("epay.transfer", p2p("h-expiry", conflicting).as_bytes())
        .await;
    let dead = app.dead.wait_for(2).await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead.iter().any(|(_, r)| r.contains("different body")));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut leaks = Vec::new();
    let events = serde_json::to_string(&app.events.events()).unwrap();
    assert!(events.contains("h-array"));
    leaks.extend(
        card_data_in(&events)
            .into_iter()
            .map(|l| format!("events: {l}")),
    );
    for (body, reason) in &dead {
        let text = format!("{} {reason}", String::from_utf8_lossy(body));
        assert!(text.contains("[redacted"), "{text}");
        leaks.extend(
            card_data_in(&text)
                .into_iter()
                .map(|l| format!("dead letter: {l}")),
        );
    }
    let keys = app.store().await.keys().await.unwrap().join(" ");
    assert!(keys.contains("h-array"), "{keys}");
    leaks.extend(
        card_data_in(&keys)
            .into_iter()
            .map(|l| format!("redis keys: {l}")),
    );
    app.stop().await;
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(text.contains("h-array"), "logs of the run are captured");
    leaks.extend(
        card_data_in(&text)
            .into_iter()
            .map(|l| format!("logs: {l}")),
    );
    assert!(leaks.is_empty(), "card data leaked: {leaks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_card_number_as_idempotency_key_is_refused() {
    let app = spawn_app("t-hostile-key", 1).await;
    // Raw: the schema's pattern takes the key, only its Luhn check (said in the
    // schema's description) refuses it.
    let pan_key = payout(PAN_DASHED, 200_000, "KZT", "444567");
    app.publish_raw("ecommpay.payout", pan_key.as_bytes()).await;
    app.publish(&payout("next-to-pan-key", 200_000, "KZT", "444567"))
        .await;
    // Before: the key was taken, and stood in Redis, in the events and in the logs.
    let dead = app.dead.wait_for(1).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let (body, reason) = &dead[0];
    assert!(reason.contains("looks like a card number"), "{reason}");
    let text = format!("{} {reason}", String::from_utf8_lossy(body));
    assert!(card_data_in(&text).is_empty(), "{text}");
    assert_eq!(
        app.terminal("next-to-pan-key").await.status,
        EventStatus::Succeeded
    );
    let events = serde_json::to_string(&app.events.events()).unwrap();
    assert!(card_data_in(&events).is_empty(), "{events}");
    let keys = app.store().await.keys().await.unwrap().join(" ");
    assert!(keys.contains("next-to-pan-key"), "{keys}");
    assert!(card_data_in(&keys).is_empty(), "{keys}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_under_another_routing_key_is_rejected_and_never_sent() {
    let app = spawn_app("t-hostile-route", 1).await;
    // Before: this payout went to the epay queue and was paid, labelled epay.
    let payout_body = payout("misrouted-payout", 200_000, "KZT", "444567");
    app.publish_raw("epay.payment", payout_body.as_bytes())
        .await;
    // A card-carrying transfer under an ECommPay key: its reason quotes no card data.
    let transfer_body = p2p(
        "misrouted-transfer",
        transfer(visa(), json!({"card": {"pan": PAN}})),
    );
    app.publish_raw("ecommpay.payout", transfer_body.as_bytes())
        .await;
    for (key, expected) in [
        (
            "misrouted-payout",
            "routing key epay.payment does not match the command: \
             method homebank operation payout route to ecommpay.payout",
        ),
        (
            "misrouted-transfer",
            "routing key ecommpay.payout does not match the command: \
             method p2p operation transfer route to epay.transfer",
        ),
    ] {
        let event = app.terminal(key).await;
        assert_eq!(event.status, EventStatus::Rejected, "{key}");
        assert_eq!(event.reason.as_deref(), Some(expected), "{key}");
        assert_eq!(app.state(key).await, Some(payfleet::state::State::Rejected));
    }
    // The same payout under its own key is paid: the queues still flow.
    app.publish(&payout("routed-payout", 200_000, "KZT", "444567"))
        .await;
    assert_eq!(
        app.terminal("routed-payout").await.status,
        EventStatus::Succeeded
    );
    let stats = app.fleet.sandbox.stats();
    assert_eq!(
        stats.requests.values().sum::<u64>(),
        1,
        "{:?}",
        stats.requests
    );
    assert_eq!(stats.executed.len(), 1, "{:?}", stats.executed);
    assert!(app.dead.wait_for(0).await.is_empty());
    let events = serde_json::to_string(&app.events.events()).unwrap();
    assert!(card_data_in(&events).is_empty(), "{events}");
    app.stop().await;
}
