//! Banks of India end to end over the real broker and Redis, the sandbox over HTTP:
//! purchases through the bank's page, payouts inside the provider's working hours,
//! refunds, the bank list and the status request.

mod common;

use chrono::{DateTime, Utc};
use common::{TestFleet, settings, spawn_app_with};
use payfleet::contract::Fingerprint;
use payfleet::contract::{Event, EventStatus, IdempotencyKey, Method, Operation};
use payfleet::providers::ecommpay::india_banks::Direction;
use payfleet::providers::ecommpay::india_hours::OffsetClock;
use payfleet::providers::{Provider, Status};
use payfleet::state::{Claim, Meta, State};
use payfleet_sim::ecommpay::india_sale::act_as_customer;
use payfleet_tools::settings::FleetSettings;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SALE: &str = "POST /v2/payment/banks/india/sale";
const PAYOUT: &str = "POST /v2/payment/banks/india/payout";
const REFUND: &str = "POST /v2/payment/banks/india/refund";

/// A moment in GMT+8. 2026-11-25 is a Wednesday, 2026-11-27 a Friday.
fn gmt8(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_str(&format!("{s} +0800"), "%Y-%m-%d %H:%M:%S %z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Settings whose worker and sandbox clocks both read `at` now.
fn settings_at(label: &str, at: DateTime<Utc>) -> FleetSettings {
    let mut s = settings(label);
    let offset = OffsetClock::reading(at).offset.num_milliseconds();
    s.ecommpay.clock_offset_ms = offset;
    s.sandbox.clock_offset_ms = offset;
    s
}

/// A fleet whose clocks read a Wednesday noon: payouts go at once.
async fn spawn(label: &str) -> TestFleet {
    spawn_app_with(settings_at(label, gmt8("2026-11-25 12:00:00")), 1).await
}

fn command(key: &str, operation: &str, minor: u64, currency: &str, details: Value) -> String {
    json!({
        "version": 1, "idempotency_key": key, "method": "banks_of_india", "operation": operation,
        "amount": {"minor": minor, "currency": currency}, "details": details
    })
    .to_string()
}

fn sale_details(customer: &str, bank_id: Option<u32>) -> Value {
    let mut d = json!({
        "customer": {"id": customer, "ip_address": "1.2.3.4", "email": "waynen@example.com",
                     "first_name": "John", "last_name": "Waynen", "phone": "919876543210",
                     "zip": "400009", "city": "Mumbai", "address": "99, Chakla Street"},
        "return_url": {"success": "https://shop.example/return"}
    });
    if let Some(id) = bank_id {
        d["bank_id"] = json!(id);
    }
    d
}

fn payout_details(name: &str, bank_id: u32) -> Value {
    json!({
        "customer": {"id": "24900", "ip_address": "1.2.3.4"},
        "account": {"number": "5588994446666", "bank_code": "SBIN0000123", "bank_id": bank_id, "customer_name": name}
    })
}

fn refund_details(purchase: &str, description: &str) -> Value {
    json!({"payment_id": purchase, "description": description})
}

/// Waits for the key's first event with `status`.
async fn event(app: &TestFleet, key: &str, status: EventStatus) -> Event {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(e) = app.events_for(key).into_iter().find(|e| e.status == status) {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "no {status:?} event for {key}; events: {:?}",
            app.events_for(key)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn requests(app: &TestFleet, endpoint: &str) -> u64 {
    app.fleet
        .sandbox
        .stats()
        .requests
        .get(endpoint)
        .copied()
        .unwrap_or(0)
}

/// Publishes each `(key, body, needle)` and checks it ends `rejected` with a reason
/// that mentions `needle`.
async fn all_rejected(app: &TestFleet, cases: &[(&str, String, &str)]) {
    for (_, body, _) in cases {
        app.publish(body).await;
    }
    for (key, _, needle) in cases {
        let e = app.terminal(key).await;
        assert_eq!(e.status, EventStatus::Rejected, "{key}");
        let reason = e.reason.unwrap_or_default();
        assert!(
            reason.contains(needle),
            "{key}: {reason:?} should mention {needle:?}"
        );
    }
}

/// A purchase paid at the bank: returns once it succeeded.
async fn paid_purchase(app: &TestFleet, key: &str, minor: u64) {
    app.publish(&command(
        key,
        "sale",
        minor,
        "INR",
        sale_details("c1", Some(403)),
    ))
    .await;
    let action = event(app, key, EventStatus::ActionRequired)
        .await
        .action
        .unwrap();
    let http = reqwest::Client::new();
    assert_eq!(
        act_as_customer(&http, &action, "success", 403)
            .await
            .unwrap(),
        200
    );
    assert_eq!(app.terminal(key).await.status, EventStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_purchase_with_a_chosen_bank_is_paid_at_the_bank_page() {
    let app = spawn("t-boi-sale").await;
    app.publish(&command(
        "boi-sale-1",
        "sale",
        1500,
        "INR",
        sale_details("c1", Some(403)),
    ))
    .await;
    let e = event(&app, "boi-sale-1", EventStatus::ActionRequired).await;
    let action = e.action.expect("the redirect");
    assert_eq!(action["method"], "GET");
    let url = action["url"].as_str().unwrap();
    assert!(url.contains("/bank/boi-sale-1"), "{url}");
    let http = reqwest::Client::new();
    let page = http.get(url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("State Bank of India") && page.contains("15.00 INR"),
        "{page}"
    );
    assert!(
        app.events_for("boi-sale-1")
            .iter()
            .all(|e| !e.status.is_terminal())
    );
    let form = [("result", "success")];
    assert_eq!(
        http.post(url).form(&form).send().await.unwrap().status(),
        200
    );
    let done = app.terminal("boi-sale-1").await;
    assert_eq!(done.status, EventStatus::Succeeded);
    assert_eq!(done.provider.unwrap().code, "0");
    assert_eq!(done.amount.unwrap().minor.minor(), 1500);
    // Paying twice at the bank is refused.
    assert_eq!(
        http.post(url).form(&form).send().await.unwrap().status(),
        409
    );
    assert_eq!(app.state("boi-sale-1").await, Some(State::Succeeded));
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.get("boi-sale-1"), Some(&1));
    assert_eq!(stats.requests.get(SALE), Some(&1));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_purchase_without_a_bank_goes_to_the_selection_page_and_can_be_declined() {
    let app = spawn("t-boi-select").await;
    app.publish(&command(
        "boi-sel-1",
        "sale",
        2500,
        "INR",
        sale_details("c2", None),
    ))
    .await;
    let action = event(&app, "boi-sel-1", EventStatus::ActionRequired)
        .await
        .action
        .unwrap();
    let url = action["url"].as_str().unwrap();
    assert!(url.contains("/select/boi-sel-1"), "{url}");
    let http = reqwest::Client::new();
    let page = http.get(url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("HDFC Bank"),
        "the selection page lists the banks"
    );
    // Without a bank the selection page cannot go on.
    let status = http
        .post(url)
        .form(&[("result", "success")])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);
    assert_eq!(
        act_as_customer(&http, &action, "decline", 406)
            .await
            .unwrap(),
        200
    );
    let done = app.terminal("boi-sel-1").await;
    assert_eq!(done.status, EventStatus::Declined);
    assert_eq!(done.provider.unwrap().code, "20000");
    assert!(app.fleet.sandbox.stats().executed.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_purchase_declined_by_the_provider_never_asks_for_action() {
    let app = spawn("t-boi-sale-decl").await;
    app.publish(&command(
        "boi-sd-1",
        "sale",
        1500,
        "INR",
        sale_details("decline-9", None),
    ))
    .await;
    let done = app.terminal("boi-sd-1").await;
    assert_eq!(done.status, EventStatus::Declined);
    assert_eq!(done.provider.unwrap().code, "20000");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        app.events_for("boi-sd-1")
            .iter()
            .all(|e| e.status != EventStatus::ActionRequired)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_purchases_are_rejected_each_for_its_reason() {
    let app = spawn("t-boi-sale-bad").await;
    let ok = sale_details("c1", None);
    let with = |path: &[&str], v: Value| {
        let mut d = ok.clone();
        let mut at = &mut d;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = v;
        d
    };
    let mut no_return = ok.clone();
    no_return.as_object_mut().unwrap().remove("return_url");
    let cases = [
        (
            "boi-sb-usd",
            command("boi-sb-usd", "sale", 1500, "USD", ok.clone()),
            "INR",
        ),
        (
            "boi-sb-id",
            command(
                "boi-sb-id",
                "sale",
                1500,
                "INR",
                with(&["customer", "id"], json!(" ")),
            ),
            "customer.id",
        ),
        (
            "boi-sb-ip",
            command(
                "boi-sb-ip",
                "sale",
                1500,
                "INR",
                with(&["customer", "ip_address"], json!("1.2.3")),
            ),
            "ip_address: not an IPv4 or IPv6 address",
        ),
        (
            "boi-sb-email",
            command(
                "boi-sb-email",
                "sale",
                1500,
                "INR",
                with(&["customer", "email"], json!("nope")),
            ),
            "email",
        ),
        (
            "boi-sb-phone",
            command(
                "boi-sb-phone",
                "sale",
                1500,
                "INR",
                with(&["customer", "phone"], json!("+91 98")),
            ),
            "phone",
        ),
        (
            "boi-sb-zip",
            command(
                "boi-sb-zip",
                "sale",
                1500,
                "INR",
                with(&["customer", "zip"], json!("40 0")),
            ),
            "zip",
        ),
        (
            "boi-sb-url",
            command(
                "boi-sb-url",
                "sale",
                1500,
                "INR",
                with(&["return_url", "success"], json!("shop")),
            ),
            "return_url",
        ),
        (
            "boi-sb-noret",
            command("boi-sb-noret", "sale", 1500, "INR", no_return),
            "return_url",
        ),
        (
            "boi-sb-extra",
            command(
                "boi-sb-extra",
                "sale",
                1500,
                "INR",
                with(&["customer", "surprise"], json!(1)),
            ),
            "surprise",
        ),
        (
            "boi-sb-bank",
            command(
                "boi-sb-bank",
                "sale",
                1500,
                "INR",
                with(&["bank_id"], json!(999)),
            ),
            "bank_id 999",
        ),
    ];
    all_rejected(&app, &cases).await;
    assert_eq!(requests(&app, SALE), 0, "nothing sent");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resent_redirect_callback_asks_for_action_once() {
    let app = spawn("t-boi-redirect-dup").await;
    app.publish(&command(
        "boi-rd-1",
        "sale",
        1500,
        "INR",
        sale_details("c1", Some(401)),
    ))
    .await;
    let first = event(&app, "boi-rd-1", EventStatus::ActionRequired).await;
    let action = first.action.clone().unwrap();
    let callback = json!({
        "project_id": 198,
        "payment": {"id": "boi-rd-1", "type": "purchase", "status": "awaiting redirect result", "method": "India banks",
                    "sum": {"amount": 1500, "currency": "INR"}},
        "operation": {"id": 1, "type": "sale", "status": "awaiting redirect result", "code": "0", "message": "Awaiting redirect result",
                      "sum_initial": {"amount": 1500, "currency": "INR"}},
        "redirect_data": action
    });
    let secret = app.secret();
    assert_eq!(app.callback(callback.clone(), &secret).await, 200);
    assert_eq!(app.callback(callback, b"forged").await, 400);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = app
        .events_for("boi-rd-1")
        .iter()
        .filter(|e| e.status == EventStatus::ActionRequired)
        .count();
    assert_eq!(asked, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redirect_that_overtakes_gates_answer_waits_for_it() {
    let app = spawn("t-boi-redirect-early").await;
    let store = app.store().await;
    let key = IdempotencyKey::parse("boi-early-1").unwrap();
    // A worker has sent the purchase and not yet recorded Gate's answer.
    let Claim::Claimed { lease, .. } = store
        .claim(
            &key,
            &Fingerprint::from_stored("fp".into()),
            30_000,
            "boi-early-1",
            &Meta::default(),
            None,
        )
        .await
        .unwrap()
    else {
        panic!("a fresh key is claimed");
    };
    let callback = json!({
        "project_id": 198,
        "payment": {"id": "boi-early-1", "type": "purchase", "status": "awaiting redirect result"},
        "operation": {"id": 1, "type": "sale", "status": "awaiting redirect result", "code": "0"},
        "redirect_data": {"url": "https://bank.example/pay", "method": "GET", "body": {}}
    });
    let secret = app.secret();
    assert_eq!(
        app.callback(callback.clone(), &secret).await,
        503,
        "Gate is asked to resend"
    );
    assert_eq!(app.state("boi-early-1").await, Some(State::Submitting));
    store
        .transition(&key, &lease, State::Submitted, None)
        .await
        .unwrap();
    assert_eq!(app.callback(callback, &secret).await, 200);
    let e = event(&app, "boi-early-1", EventStatus::ActionRequired).await;
    assert_eq!(e.action.unwrap()["url"], "https://bank.example/pay");
    assert_eq!(app.state("boi-early-1").await, Some(State::ActionRequired));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_who_never_returns_is_declined_at_the_threshold() {
    let mut s = settings_at("t-boi-abandon", gmt8("2026-11-25 12:00:00"));
    // 60 minutes become 3.6 seconds.
    s.reconciler.time_scale = 0.001;
    s.reconciler.interval_ms = 200;
    let app = spawn_app_with(s, 1).await;
    let started = Instant::now();
    app.publish(&command(
        "boi-gone-1",
        "sale",
        1500,
        "INR",
        sale_details("c1", Some(403)),
    ))
    .await;
    event(&app, "boi-gone-1", EventStatus::ActionRequired).await;
    let done = app.terminal("boi-gone-1").await;
    assert!(
        started.elapsed() >= Duration::from_millis(3600),
        "not before the threshold"
    );
    assert_eq!(done.status, EventStatus::Declined);
    assert!(done.reason.unwrap_or_default().contains("threshold"));
    assert_eq!(app.state("boi-gone-1").await, Some(State::Declined));
    app.stop().await;
}

/// Issue 14, case 7: a purchase whose redirect callback was lost still reaches its
/// customer, since Gate's status answer carries `redirect_data`: the reconciler records
/// `action_required` with it and the customer pays. When the status carries none, the
/// purchase is declined at the threshold, as the document says Gate declines it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_redirect_callback_is_recovered_from_the_status_answer() {
    let mut s = settings_at("t-boi-lost-redirect", gmt8("2026-11-25 12:00:00"));
    // 5 minutes' basic time become 300 ms, the 60 minutes' threshold 3.6 s.
    s.reconciler.time_scale = 0.001;
    s.reconciler.interval_ms = 100;
    let app = spawn_app_with(s, 1).await;
    let lost = |answers: Value| {
        let faults = json!({"callbacks": {"loss_rate": 1.0}, "answers": answers});
        serde_json::from_value(faults).unwrap()
    };
    app.fleet.sandbox.set_faults(lost(json!({})));
    let sale = |key| command(key, "sale", 1500, "INR", sale_details("c1", Some(403)));
    app.publish(&sale("boi-lost-1")).await;
    let action = event(&app, "boi-lost-1", EventStatus::ActionRequired)
        .await
        .action
        .unwrap();
    assert_eq!(app.state("boi-lost-1").await, Some(State::ActionRequired));
    let http = reqwest::Client::new();
    assert_eq!(
        act_as_customer(&http, &action, "success", 403)
            .await
            .unwrap(),
        200
    );
    // Its result callback is lost too: the status query settles it.
    let paid = app.terminal("boi-lost-1").await;
    assert_eq!(paid.status, EventStatus::Succeeded, "{paid:?}");

    app.fleet
        .sandbox
        .set_faults(lost(json!({"ecommpay_status_without_action_rate": 1.0})));
    let started = Instant::now();
    app.publish(&sale("boi-lost-2")).await;
    let done = app.terminal("boi-lost-2").await;
    assert!(started.elapsed() >= Duration::from_millis(3600));
    assert_eq!(done.status, EventStatus::Declined);
    assert!(done.reason.unwrap_or_default().contains("threshold"));
    assert!(
        app.events_for("boi-lost-2")
            .iter()
            .all(|e| e.status != EventStatus::ActionRequired)
    );
    let stats = app.fleet.sandbox.stats();
    assert!(stats.executed_more_than_once.is_empty(), "{stats:?}");
    assert!(!stats.executed.contains_key("boi-lost-2"), "{stats:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_provider_declines_a_purchase_whose_customer_never_returns() {
    let mut s = settings_at("t-boi-expire", gmt8("2026-11-25 12:00:00"));
    s.sandbox.india_sale_threshold_ms = 1000;
    let app = spawn_app_with(s, 1).await;
    app.publish(&command(
        "boi-exp-1",
        "sale",
        1500,
        "INR",
        sale_details("c1", None),
    ))
    .await;
    let action = event(&app, "boi-exp-1", EventStatus::ActionRequired)
        .await
        .action
        .unwrap();
    let done = app.terminal("boi-exp-1").await;
    assert_eq!(done.status, EventStatus::Declined);
    assert_eq!(
        done.provider.unwrap().code,
        "20000",
        "by the provider's callback"
    );
    // The bank no longer takes the payment.
    let http = reqwest::Client::new();
    assert_eq!(
        act_as_customer(&http, &action, "success", 403)
            .await
            .unwrap(),
        409
    );
    assert!(app.fleet.sandbox.stats().executed.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payouts_succeed_decline_and_are_validated() {
    let app = spawn("t-boi-payout").await;
    app.publish(&command(
        "boi-po-ok",
        "payout",
        1_000_00,
        "INR",
        payout_details("John Waynen", 412),
    ))
    .await;
    app.publish(&command(
        "boi-po-top",
        "payout",
        500_000_00,
        "INR",
        payout_details("John Waynen", 401),
    ))
    .await;
    app.publish(&command(
        "boi-po-decl",
        "payout",
        2_000_00,
        "INR",
        payout_details("decline Waynen", 412),
    ))
    .await;
    let ok = app.terminal("boi-po-ok").await;
    assert_eq!(
        (ok.status, ok.provider.unwrap().code.as_str()),
        (EventStatus::Succeeded, "0")
    );
    assert_eq!(
        app.terminal("boi-po-top").await.status,
        EventStatus::Succeeded
    );
    let decl = app.terminal("boi-po-decl").await;
    let provider = decl.provider.unwrap();
    assert_eq!(decl.status, EventStatus::Declined);
    assert_eq!(
        (provider.code.as_str(), provider.message.as_str()),
        ("20000", "General decline")
    );
    assert!(
        app.events_for("boi-po-ok")
            .iter()
            .all(|e| e.status != EventStatus::Deferred)
    );

    let with = |field: &str, v: Value| {
        let mut d = payout_details("John", 412);
        d["account"][field] = v;
        d
    };
    let cases = [
        (
            "boi-pb-min",
            command(
                "boi-pb-min",
                "payout",
                999_99,
                "INR",
                payout_details("J", 412),
            ),
            "1000.00 to 500000.00 INR",
        ),
        (
            "boi-pb-max",
            command(
                "boi-pb-max",
                "payout",
                500_000_01,
                "INR",
                payout_details("J", 412),
            ),
            "1000.00 to 500000.00 INR",
        ),
        (
            "boi-pb-usd",
            command(
                "boi-pb-usd",
                "payout",
                1_500_00,
                "USD",
                payout_details("J", 412),
            ),
            "INR",
        ),
        (
            "boi-pb-number",
            command(
                "boi-pb-number",
                "payout",
                1_500_00,
                "INR",
                with("number", json!("12ab")),
            ),
            "account.number",
        ),
        (
            "boi-pb-ifsc",
            command(
                "boi-pb-ifsc",
                "payout",
                1_500_00,
                "INR",
                with("bank_code", json!("test_code")),
            ),
            "IFSC",
        ),
        (
            "boi-pb-name",
            command(
                "boi-pb-name",
                "payout",
                1_500_00,
                "INR",
                with("customer_name", json!("")),
            ),
            "customer_name",
        ),
        (
            "boi-pb-bank",
            command(
                "boi-pb-bank",
                "payout",
                1_500_00,
                "INR",
                with("bank_id", json!(999)),
            ),
            "bank_id 999",
        ),
        (
            "boi-pb-extra",
            command(
                "boi-pb-extra",
                "payout",
                1_500_00,
                "INR",
                with("iban", json!("x")),
            ),
            "iban",
        ),
    ];
    all_rejected(&app, &cases).await;
    assert_eq!(
        requests(&app, PAYOUT),
        3,
        "only the valid payouts were sent"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payout_outside_working_hours_is_deferred_and_sent_when_the_window_opens() {
    // Monday 10:29:52 GMT+8: the window opens in eight seconds (room for a slow start).
    let opens = gmt8("2026-11-30 10:30:00");
    let settings = settings_at("t-boi-deferred", opens - chrono::Duration::seconds(8));
    // When the window opens by this machine's clock, however long the start takes.
    let opens_here = opens - chrono::Duration::milliseconds(settings.ecommpay.clock_offset_ms);
    let mut app = spawn_app_with(settings, 1).await;
    app.publish(&command(
        "boi-def-1",
        "payout",
        1_500_00,
        "INR",
        payout_details("John", 412),
    ))
    .await;
    let deferred = event(&app, "boi-def-1", EventStatus::Deferred).await;
    let until = deferred.deferred_until.expect("says when it will go");
    let off = (until - opens_here).num_milliseconds().abs();
    assert!(
        off <= 1_000,
        "deferred until {until}, the window opens at {opens_here}"
    );
    assert!(deferred.reason.unwrap().contains("working hours"));
    assert_eq!(requests(&app, PAYOUT), 0, "neither refused nor sent");
    // The held payout lives in the broker: a worker restart loses nothing.
    app.fleet.stop_worker(0).await.unwrap();
    app.fleet.add_worker().await.unwrap();
    let done = app.terminal("boi-def-1").await;
    assert_eq!(done.status, EventStatus::Succeeded);
    assert!(Utc::now() >= until, "not sent before the window opened");
    assert_eq!(requests(&app, PAYOUT), 1, "sent once, inside the window");
    let deferred_events = app
        .events_for("boi-def-1")
        .iter()
        .filter(|e| e.status == EventStatus::Deferred)
        .count();
    assert_eq!(
        deferred_events, 1,
        "one deferred event however often it cycled"
    );
    app.stop().await;
}

/// Posts a signed payout straight to the sandbox.
async fn sandbox_payout(app: &TestFleet, payment_id: &str) -> Value {
    let mut body = json!({
        "general": {"project_id": app.fleet.settings.sandbox.ecommpay_project_id, "payment_id": payment_id},
        "payment": {"amount": 1_500_00, "currency": "INR"},
        "customer": {"id": "1", "ip_address": "1.2.3.4"},
        "account": {"number": "5588994446666", "bank_code": "SBIN0000123", "bank_id": 403, "customer_name": "John"}
    });
    payfleet::providers::ecommpay::signature::sign_request(&app.secret(), &mut body);
    reqwest::Client::new()
        .post(format!(
            "http://{}/v2/payment/banks/india/payout",
            app.fleet.sandbox_addr
        ))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sandbox_refuses_payouts_outside_working_hours() {
    for (label, at, open) in [
        ("t-boi-fri-1859", "2026-11-27 18:59:00", true),
        ("t-boi-fri-1900", "2026-11-27 19:00:00", false),
        ("t-boi-sat", "2026-11-28 12:00:00", false),
        ("t-boi-mon-1029", "2026-11-30 10:29:00", false),
        ("t-boi-mon-1030", "2026-11-30 10:30:00", true),
    ] {
        let app = spawn_app_with(settings_at(label, gmt8(at)), 0).await;
        let answer = sandbox_payout(&app, &format!("direct-{label}")).await;
        if open {
            assert_eq!(answer["status"], "success", "{at}: {answer}");
        } else {
            assert_eq!(answer["status"], "error", "{at}: {answer}");
            assert_eq!(answer["code"], "3400", "{at}");
        }
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refunds_full_too_large_declined_partial_and_unknown() {
    let app = spawn("t-boi-refund").await;
    for (key, minor) in [
        ("boi-p1", 35000),
        ("boi-p2", 35000),
        ("boi-p3", 35000),
        ("boi-p4", 35000),
    ] {
        paid_purchase(&app, key, minor).await;
    }
    let cases = [
        (
            "boi-rf-ok",
            "boi-p1",
            35000,
            "returned goods",
            EventStatus::Succeeded,
            "0",
        ),
        (
            "boi-rf-big",
            "boi-p2",
            35001,
            "too much",
            EventStatus::Declined,
            "3283",
        ),
        (
            "boi-rf-decl",
            "boi-p3",
            35000,
            "decline please",
            EventStatus::Declined,
            "20000",
        ),
        (
            "boi-rf-part",
            "boi-p4",
            100,
            "partial",
            EventStatus::Declined,
            "1202",
        ),
        (
            "boi-rf-unknown",
            "boi-never-sold",
            35000,
            "x",
            EventStatus::Declined,
            // Gate's "Transaction not found": it never registered the purchase.
            "3061",
        ),
    ];
    for (key, purchase, minor, description, _, _) in cases {
        app.publish(&command(
            key,
            "refund",
            minor,
            "INR",
            refund_details(purchase, description),
        ))
        .await;
    }
    for (key, _, _, _, status, code) in cases {
        let e = app.terminal(key).await;
        assert_eq!(e.status, status, "{key}: {e:?}");
        assert_eq!(e.provider.unwrap().code, code, "{key}");
    }
    // Gate knows a refund by its purchase's payment id, and so do its events.
    let refunded = app.terminal("boi-rf-ok").await;
    assert_eq!(refunded.payment_id.as_deref(), Some("boi-p1"));
    assert_eq!(refunded.operation, Some(Operation::Refund));
    // A declined refund leaves the purchase paid; a refund of a refunded one is refused.
    let ecommpay = payfleet::app::ecommpay(&app.fleet.settings).unwrap();
    let gate = ecommpay.gate();
    let (_, answer) = gate
        .post(
            "/v2/payment/status",
            json!({"general": gate.general("boi-p2")}),
        )
        .await
        .unwrap();
    assert_eq!(answer["payment"]["status"], "success", "{answer}");
    assert_eq!(answer["operations"][1]["code"], "3283");
    // A second refund command of a refunded purchase is refused before it is sent.
    let before = requests(&app, REFUND);
    app.publish(&command(
        "boi-rf-again",
        "refund",
        35000,
        "INR",
        refund_details("boi-p1", "again"),
    ))
    .await;
    let again = app.terminal("boi-rf-again").await;
    assert_eq!(again.status, EventStatus::Rejected, "{again:?}");
    assert_eq!(
        again.reason.as_deref(),
        Some("the purchase is already refunded by command boi-rf-ok")
    );
    assert_eq!(requests(&app, REFUND), before);
    // Invalid refunds never reach the provider.
    let cases = [
        (
            "boi-rb-usd",
            command(
                "boi-rb-usd",
                "refund",
                35000,
                "USD",
                refund_details("boi-p1", "x"),
            ),
            "INR",
        ),
        (
            "boi-rb-desc",
            command(
                "boi-rb-desc",
                "refund",
                35000,
                "INR",
                json!({"payment_id": "boi-p1"}),
            ),
            "description",
        ),
        (
            "boi-rb-id",
            command("boi-rb-id", "refund", 35000, "INR", refund_details("", "x")),
            "payment_id",
        ),
        (
            "boi-rb-partial",
            command(
                "boi-rb-partial",
                "refund",
                35000,
                "INR",
                json!({"payment_id": "boi-p1", "description": "x", "amount": 100}),
            ),
            "amount",
        ),
    ];
    all_rejected(&app, &cases).await;
    assert_eq!(requests(&app, REFUND), before);
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.get("boi-rf-ok"), Some(&1));
    assert!(stats.executed_more_than_once.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_requests_map_each_operation_and_the_bank_list_is_cached() {
    let app = spawn("t-boi-status").await;
    let ecommpay = payfleet::app::ecommpay(&app.fleet.settings).unwrap();
    let status = |id: &'static str, op| {
        let e = ecommpay.clone();
        async move {
            let key = IdempotencyKey::parse(id).unwrap();
            e.status(&key, id, Method::BanksOfIndia, op).await.unwrap()
        }
    };
    assert_eq!(
        status("boi-nothing", Operation::Sale).await,
        Status::NotFound
    );
    app.publish(&command(
        "boi-st-sale",
        "sale",
        1500,
        "INR",
        sale_details("c1", Some(403)),
    ))
    .await;
    let action = event(&app, "boi-st-sale", EventStatus::ActionRequired)
        .await
        .action
        .unwrap();
    match status("boi-st-sale", Operation::Sale).await {
        Status::ActionRequired(outcome) => assert_eq!(outcome.action.unwrap(), action),
        other => panic!("awaiting the customer: {other:?}"),
    }
    assert_eq!(
        status("boi-st-sale", Operation::Refund).await,
        Status::NotFound
    );
    act_as_customer(&reqwest::Client::new(), &action, "success", 403)
        .await
        .unwrap();
    app.terminal("boi-st-sale").await;
    assert!(matches!(
        status("boi-st-sale", Operation::Sale).await,
        Status::Final {
            state: State::Succeeded,
            ..
        }
    ));
    app.publish(&command(
        "boi-st-po",
        "payout",
        1_500_00,
        "INR",
        payout_details("decline", 412),
    ))
    .await;
    app.terminal("boi-st-po").await;
    match status("boi-st-po", Operation::Payout).await {
        Status::Final { state, outcome } => {
            assert_eq!(state, State::Declined);
            assert_eq!(outcome.code.as_deref(), Some("20000"));
        }
        other => panic!("{other:?}"),
    }

    let gate = ecommpay.gate();
    let banks = ecommpay.banks().get(gate, Direction::Payout).await.unwrap();
    assert_eq!(banks.len(), 16);
    assert!(
        banks
            .iter()
            .any(|b| b.id == 403 && b.name == "State Bank of India")
    );
    let fetched = requests(&app, "POST /v2/info/banks/india/payout/list");
    ecommpay.banks().get(gate, Direction::Payout).await.unwrap();
    assert_eq!(
        requests(&app, "POST /v2/info/banks/india/payout/list"),
        fetched,
        "cached"
    );
    assert!(
        ecommpay
            .banks()
            .check(gate, Direction::Sale, 999)
            .await
            .is_err()
    );
    assert!(
        ecommpay
            .banks()
            .check(gate, Direction::Sale, 401)
            .await
            .is_ok()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payfleet_banks_prints_the_providers_list() {
    let app = spawn_app_with(settings("t-boi-cli"), 0).await;
    let secret = String::from_utf8(app.secret()).unwrap();
    let base_url = format!("http://{}", app.fleet.sandbox_addr);
    let run = |args: &'static [&'static str]| {
        let (secret, base_url) = (secret.clone(), base_url.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_payfleet"))
                .args(args)
                .env("PAYFLEET__ECOMMPAY__BASE_URL", base_url)
                .env("PAYFLEET__ECOMMPAY__SECRET_KEY", secret)
                .env("PAYFLEET__TELEMETRY__LOG_LEVEL", "warn")
                .output()
                .expect("the binary runs")
        })
    };
    let out = run(&["banks", "india", "payout"]).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("403  State Bank of India"), "{text}");
    let out = run(&["banks", "india", "sale", "--json"]).await.unwrap();
    let banks: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(banks.len(), 16);
    assert_eq!(requests(&app, "POST /v2/info/banks/india/sale/list"), 1);
    app.stop().await;
}

/// Found by the chaos run: Redis lost a paid refund's record, its command came again,
/// Gate refused the resubmission, and the refund was reported declined.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refund_resent_after_redis_lost_its_record_is_never_declined() {
    let app = spawn("t-boi-refund-loss").await;
    paid_purchase(&app, "boi-lp1", 35000).await;
    let refund = command(
        "boi-lrf1",
        "refund",
        35000,
        "INR",
        refund_details("boi-lp1", "returned goods"),
    );
    app.publish(&refund).await;
    assert_eq!(
        app.terminal("boi-lrf1").await.status,
        EventStatus::Succeeded
    );
    // Redis loses everything of this fleet; the command comes again.
    let store = app.store().await;
    assert!(store.delete_all().await.unwrap() > 0);
    app.publish(&refund).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while app.state("boi-lrf1").await.is_none_or(|s| !s.is_terminal()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the resent refund settles"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.settled_event_count("boi-lrf1").await;
    let statuses: Vec<_> = app
        .events_for("boi-lrf1")
        .into_iter()
        .map(|e| e.status)
        .filter(|s| s.is_terminal())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == EventStatus::Succeeded),
        "{statuses:?}"
    );
    assert_eq!(
        app.fleet
            .sandbox
            .stats()
            .executed
            .values()
            .filter(|n| **n > 1)
            .count(),
        0,
        "nothing moved twice"
    );
    app.stop().await;
}

/// Gate knows a refund by its purchase's payment id: a refund whose answer was lost
/// (Gate never registered it) must not take the result of an earlier refund of the
/// same purchase by another command. Its status says "not found" (not ours), so it is
/// sent again and settles by its own operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refund_whose_outcome_is_unknown_is_settled_by_its_own_operation_only() {
    let mut s = settings_at("t-boi-refund-own", gmt8("2026-11-25 12:00:00"));
    // Gate's 10 s before a status request become 100 ms.
    s.reconciler.time_scale = 0.01;
    let app = spawn_app_with(s, 1).await;
    paid_purchase(&app, "boi-own-p", 35000).await;
    let refund = |key, description| {
        command(
            key,
            "refund",
            35000,
            "INR",
            refund_details("boi-own-p", description),
        )
    };
    app.publish(&refund("boi-own-rf-1", "decline please")).await;
    let first = app.terminal("boi-own-rf-1").await;
    assert_eq!(first.status, EventStatus::Declined, "{first:?}");
    // The second refund's request is lost before Gate registers it.
    let dropped = json!({"answers": {"ecommpay_dropped_rate": 1.0}});
    app.fleet
        .sandbox
        .set_faults(serde_json::from_value(dropped).unwrap());
    app.publish(&refund("boi-own-rf-2", "returned goods")).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let was_dropped = |app: &TestFleet| {
        let stats = app.fleet.sandbox.stats();
        stats.faults.contains_key("ecommpay_dropped")
    };
    while !was_dropped(&app) {
        assert!(Instant::now() < deadline, "the refund was never sent");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.fleet.sandbox.set_faults(Default::default());
    let second = app.terminal("boi-own-rf-2").await;
    assert_eq!(second.status, EventStatus::Succeeded, "{second:?}");
    assert_eq!(second.provider.unwrap().code, "0");
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.get("boi-own-rf-2"), Some(&1));
    app.stop().await;
}

/// A fleet in working hours whose status queries come quickly: Gate's 10 s before a
/// status request become 10 ms, the basic 15 minutes 0.9 s.
async fn spawn_quick_status(label: &str) -> TestFleet {
    let mut s = settings_at(label, gmt8("2026-11-25 12:00:00"));
    s.reconciler.time_scale = 0.001;
    s.reconciler.interval_ms = 100;
    spawn_app_with(s, 1).await
}

/// The document's refund request has no `merchant_refund_id`, and its refund callbacks
/// show the purchase's id there. Against a Gate that reports refunds so, a refund whose
/// answer was lost is still found by its status (the purchase's refund), never sent
/// again, and its callback settles neither it nor the purchase.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refund_gate_reports_under_its_purchase_id_is_settled_by_its_status() {
    const REFUND: &str = "POST /v2/payment/banks/india/refund";
    let app = spawn_quick_status("t-boi-refund-echo").await;
    paid_purchase(&app, "boi-echo-p", 35000).await;
    let purchase_events = || -> Vec<_> {
        app.events_for("boi-echo-p")
            .into_iter()
            .map(|e| e.event_id)
            .collect()
    };
    let before = purchase_events();
    let faults = json!({
        "endpoints": {REFUND: {"error_after_rate": 1.0}},
        "answers": {"ecommpay_refund_id_as_purchase_rate": 1.0}
    });
    app.fleet
        .sandbox
        .set_faults(serde_json::from_value(faults).unwrap());
    app.publish(&command(
        "boi-echo-rf",
        "refund",
        35000,
        "INR",
        refund_details("boi-echo-p", "returned goods"),
    ))
    .await;
    let refund = app.terminal("boi-echo-rf").await;
    assert_eq!(refund.status, EventStatus::Succeeded, "{refund:?}");
    assert_eq!(requests(&app, REFUND), 1, "asked, never sent again");
    app.settled_event_count("boi-echo-rf").await;
    assert_eq!(
        purchase_events(),
        before,
        "the purchase is told nothing of its refund"
    );
    app.stop().await;
}

/// Two refund commands of one purchase at once, at a Gate that reports refunds under
/// the purchase's id (so their answers could not be told apart): one is sent and
/// settles, the other is rejected before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_refund_commands_of_one_purchase_send_one_refund() {
    const REFUND: &str = "POST /v2/payment/banks/india/refund";
    // Its callback names no refund: its status settles it.
    let app = spawn_quick_status("t-boi-refund-twice").await;
    paid_purchase(&app, "boi-twice-p", 35000).await;
    let echo = json!({"answers": {"ecommpay_refund_id_as_purchase_rate": 1.0}});
    app.fleet
        .sandbox
        .set_faults(serde_json::from_value(echo).unwrap());
    let keys = ["boi-twice-rf-1", "boi-twice-rf-2"];
    for key in keys {
        let details = refund_details("boi-twice-p", "returned goods");
        app.publish(&command(key, "refund", 35000, "INR", details))
            .await;
    }
    let mut statuses = Vec::new();
    for key in keys {
        let e = app.terminal(key).await;
        statuses.push((e.status, e.reason.clone()));
    }
    let (sent, refused): (Vec<_>, Vec<_>) = statuses
        .iter()
        .partition(|(status, _)| *status == EventStatus::Succeeded);
    assert_eq!((sent.len(), refused.len()), (1, 1), "{statuses:?}");
    let (status, reason) = refused[0];
    assert_eq!(*status, EventStatus::Rejected, "{statuses:?}");
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.contains("boi-twice-rf-")),
        "{reason:?}"
    );
    assert_eq!(requests(&app, REFUND), 1, "one refund sent");
    app.stop().await;
}
