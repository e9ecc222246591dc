//! Issue 14, case 6: ECommPay callbacks that prove less than they claim, over the real
//! broker and Redis, the independent simulator sending them as Gate would.

mod common;

use common::{TestFleet, payout, payout_callback, spawn_app};
use payfleet::contract::{EventStatus, IdempotencyKey};
use payfleet::state::State;
use std::time::Duration;

async fn with_answers(label: &str, answers: serde_json::Value) -> TestFleet {
    let app = spawn_app(label, 1).await;
    let faults = serde_json::json!({ "answers": answers });
    app.fleet
        .sandbox
        .set_faults(serde_json::from_value(faults).unwrap());
    app
}

/// A signed callback naming other money (sent before the authentic one) is refused and
/// noted on the record; the payment settles by the authentic callback, for its own money.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_callback_for_other_money_is_refused_and_noted() {
    let app = with_answers(
        "t-cb-mismatch",
        serde_json::json!({"ecommpay_callback_mismatch_rate": 1.0}),
    )
    .await;
    app.publish(&payout("cb-mm-1", 20_000_000, "KZT", "444567"))
        .await;
    let event = app.terminal("cb-mm-1").await;
    assert_eq!(event.status, EventStatus::Succeeded, "{event:?}");
    assert_eq!(event.amount.unwrap().minor.minor(), 20_000_000);
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.faults.get("callback_mismatch"), Some(&1), "{stats:?}");
    let rec = app
        .store()
        .await
        .record(&IdempotencyKey::parse("cb-mm-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    let note = rec.note.expect("the refusal is noted for operators");
    assert!(note.contains("USD"), "{note}");
    app.stop().await;
}

/// A signed callback naming other money than an open payment's leaves it open, noted,
/// and is answered 200 (durably recorded: Gate need not resend it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mismatch_leaves_the_payment_open_for_the_status_query() {
    let app = spawn_app("t-cb-mismatch-open", 0).await;
    let store = app.store().await;
    let key = IdempotencyKey::parse("cb-mm-2").unwrap();
    let meta = payfleet::state::Meta {
        amount: Some(payfleet::contract::Money {
            minor: payfleet::contract::Amount::parse(200000).unwrap(),
            currency: payfleet::contract::Currency::KZT,
        }),
        ..Default::default()
    };
    let fp = payfleet::contract::Fingerprint::from_stored("fp".into());
    store
        .claim(&key, &fp, 30_000, "cb-mm-2", &meta, None)
        .await
        .unwrap();
    let mut body = payout_callback("cb-mm-2", "success", "0", "Success");
    body["payment"]["sum"] = serde_json::json!({"amount": 100, "currency": "USD"});
    body["operation"]["sum_initial"] = serde_json::json!({"amount": 100, "currency": "USD"});
    assert_eq!(app.callback(body, &app.secret()).await, 200);
    let rec = store.record(&key).await.unwrap().unwrap();
    assert_eq!(rec.state, State::Submitting);
    assert!(rec.note.is_some_and(|n| n.contains("succeeded")));
    assert!(app.events_for("cb-mm-2").is_empty());
    app.stop().await;
}

/// A signed refund callback that names this refund but another payment (a purchase it
/// never refunded) settles nothing: the refund stays open, noted, for its status query.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_callback_about_another_payment_is_refused_and_noted() {
    let app = spawn_app("t-cb-other-payment", 0).await;
    let store = app.store().await;
    let key = IdempotencyKey::parse("cb-rf-1").unwrap();
    let fp = payfleet::contract::Fingerprint::from_stored("fp".into());
    // A refund is sent as its purchase's payment.
    store
        .claim(&key, &fp, 30_000, "sale-1", &Default::default(), None)
        .await
        .unwrap();
    let mut body = payout_callback("never-sent-1", "decline", "20000", "General decline");
    body["payment"]["merchant_refund_id"] = serde_json::json!("cb-rf-1");
    body["operation"]["type"] = serde_json::json!("refund");
    assert_eq!(app.callback(body, &app.secret()).await, 200);
    let rec = store.record(&key).await.unwrap().unwrap();
    assert_eq!(rec.state, State::Submitting);
    let note = rec.note.expect("the refusal is noted for operators");
    assert!(
        note.contains("never-sent-1") && note.contains("sale-1"),
        "{note}"
    );
    assert!(app.events_for("cb-rf-1").is_empty());
    app.stop().await;
}

/// A signed callback for a payment id payfleet never sent creates nothing: the command
/// that later comes with that key is sent and settles by its own result.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_callback_for_an_unknown_payment_creates_nothing_a_command_adopts() {
    let app = spawn_app("t-cb-unknown", 1).await;
    let callback = payout_callback("cb-unk-1", "success", "0", "Success");
    assert_eq!(app.callback(callback, &app.secret()).await, 200);
    assert_eq!(app.state("cb-unk-1").await, None);
    assert!(app.events_for("cb-unk-1").is_empty());
    app.publish(&payout("cb-unk-1", 500000, "KZT", "decline-77"))
        .await;
    let event = app.terminal("cb-unk-1").await;
    assert_eq!(event.status, EventStatus::Declined, "{event:?}");
    let stats = app.fleet.sandbox.stats();
    assert_eq!(
        stats
            .requests
            .get("POST /v2/payment/cash-out-kz/homebank/payout"),
        Some(&1)
    );
    app.stop().await;
}

/// The simulator's own unknown-payment callbacks (a fresh id alongside each outcome)
/// leave nothing behind and the real payment settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_simulators_unknown_payment_callbacks_are_answered_and_ignored() {
    let app = with_answers(
        "t-cb-unknown-sim",
        serde_json::json!({"ecommpay_callback_unknown_payment_rate": 1.0}),
    )
    .await;
    app.publish(&payout("cb-unk-2", 200000, "KZT", "444567"))
        .await;
    assert_eq!(
        app.terminal("cb-unk-2").await.status,
        EventStatus::Succeeded
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.faults.get("callback_unknown_payment"), Some(&1));
    assert_eq!(stats.callbacks.abandoned, 0, "{stats:?}");
    let keys = app.store().await.keys().await.unwrap();
    assert!(!keys.iter().any(|k| k.contains("never-sent")), "{keys:?}");
    app.stop().await;
}

/// An unsigned `"redirect_data": {}` added to an authentic callback means nothing: the
/// payout settles, never asks for action.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_added_empty_object_carries_no_meaning() {
    let app = with_answers(
        "t-cb-empty",
        serde_json::json!({"ecommpay_callback_empty_object_rate": 1.0}),
    )
    .await;
    app.publish(&payout("cb-empty-1", 200000, "KZT", "444567"))
        .await;
    assert_eq!(
        app.terminal("cb-empty-1").await.status,
        EventStatus::Succeeded
    );
    let stats = app.fleet.sandbox.stats();
    assert!(
        stats
            .faults
            .get("callback_empty_object")
            .is_some_and(|n| *n >= 1)
    );
    let statuses: Vec<_> = app
        .events_for("cb-empty-1")
        .iter()
        .map(|e| e.status)
        .collect();
    assert!(
        !statuses.contains(&EventStatus::ActionRequired),
        "{statuses:?}"
    );
    app.stop().await;
}

/// A payout settled by its callback leaves the open-payments index at once (it used to
/// count as open until the reconciler's next look, minutes later).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_settled_by_callback_leaves_the_open_index() {
    let app = spawn_app("t-cb-untrack", 1).await;
    app.publish(&payout("cb-open-1", 200_000, "KZT", "444567"))
        .await;
    let event = app.terminal("cb-open-1").await;
    assert_eq!(event.status, EventStatus::Succeeded, "{event:?}");
    let store = app.store().await;
    let later = std::time::SystemTime::now() + Duration::from_secs(86_400);
    let open = store.due(later, 10_000).await.unwrap();
    assert!(
        !open.iter().any(|k| k.as_str() == "cb-open-1"),
        "settled, still indexed as open: {open:?}"
    );
    app.stop().await;
}
