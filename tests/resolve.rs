//! `payfleet payments resolve` against a real fleet: the provider's final status
//! decides, a final payment is refused, and the status query keeps to the account's
//! `status` rate limit as the workers' and the reconciler's do, holds or not.

mod common;

use common::{TestFleet, payout, spawn_app, spawn_app_with};
use payfleet::config::Limit;
use payfleet::contract::operator::OperatorAction;
use payfleet::contract::{EventStatus, IdempotencyKey, ProviderName};
use payfleet::ratelimit::{Answer, Global, RateKey, STATUS};
use payfleet::state::State;
use payfleet_sim::faults::CallbackFaults;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Publishes a payout the provider pays but whose callback is lost: it waits,
/// `submitted`, for a status query or an operator.
async fn paid_without_a_callback(app: &TestFleet, key: &str) {
    let mut faults = app.fleet.sandbox.faults();
    faults.callbacks = CallbackFaults {
        loss_rate: 1.0,
        ..Default::default()
    };
    app.fleet.sandbox.set_faults(faults);
    app.publish(&payout(key, 200000, "KZT", "1")).await;
    app.wait_for_state(key, State::Submitted).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.fleet.sandbox.stats().executed.get(key) != Some(&1) {
        assert!(Instant::now() < deadline, "the provider never paid it");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn resolve<'a>(key: &'a str, outcome: &'a str) -> [&'a str; 9] {
    [
        "payments",
        "resolve",
        key,
        "--outcome",
        outcome,
        "--reason",
        "bank statement checked",
        "--by",
        "ops-bob",
    ]
}

/// `payfleet payments resolve` on a payout whose callback was lost: the provider's
/// final status decides whenever it has one. Resolved against it, nothing changes;
/// with it, the provider's own outcome is recorded and announced once, marked as the
/// operator's resolution.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payments_resolve_defers_to_the_providers_final_status() {
    let app = spawn_app("t-ops-resolve", 1).await;
    paid_without_a_callback(&app, "res-1").await;
    let stderr = app
        .cli_refused(&[
            "payments",
            "resolve",
            "res-none",
            "--outcome",
            "failed",
            "--reason",
            "x",
            "--by",
            "y",
        ])
        .await;
    assert!(stderr.contains("no record for res-none"), "{stderr}");

    // The provider paid it: the operator's "declined" is refused, and nothing changes.
    let stderr = app.cli_refused(&resolve("res-1", "declined")).await;
    assert!(
        stderr.contains("the provider says succeeded") && stderr.contains("not declined"),
        "{stderr}"
    );
    assert_eq!(app.state("res-1").await, Some(State::Submitted));
    let store = app.store().await;
    let rec = store
        .record(&IdempotencyKey::parse("res-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.note, None, "a refusal leaves no note");
    assert!(app.events.operator_events().is_empty());

    // It agrees: the provider's own outcome, with the resolution in its reason.
    let out = app
        .cli_ok(&[&resolve("res-1", "succeeded")[..], &["--json"]].concat())
        .await;
    let done: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["by_provider"], true, "{done}");
    let event = app.terminal("res-1").await;
    assert_eq!(event.status, EventStatus::Succeeded);
    assert!(
        event.provider.is_some(),
        "the provider's own code: {event:?}"
    );
    assert_eq!(
        event.reason.as_deref(),
        Some("resolved by ops-bob: bank statement checked"),
        "{event:?}"
    );
    assert_eq!(
        app.settled_event_count("res-1").await,
        2,
        "accepted, then succeeded once"
    );
    let audit = app.events.operator_events();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, OperatorAction::PaymentResolved);
    assert_eq!(
        (audit[0].target.as_str(), audit[0].by.as_str()),
        ("res-1", "ops-bob")
    );
    assert_eq!(
        store.open_count().await.unwrap(),
        0,
        "it left the open index"
    );
    let table = app.cli_ok(&["payments", "show", "res-1"]).await;
    assert!(table.contains("resolved by ops-bob at "), "{table}");
    assert!(
        table.contains(": bank statement checked (outcome succeeded)"),
        "{table}"
    );

    // Final now: refused, whatever the outcome asked.
    let stderr = app.cli_refused(&resolve("res-1", "succeeded")).await;
    assert!(stderr.contains("already succeeded"), "{stderr}");
    assert_eq!(app.events.operator_events().len(), 1);
    let stats = app.fleet.sandbox.stats();
    assert!(stats.executed_more_than_once.is_empty(), "{stats:?}");
    app.stop().await;
}

/// The status query of a resolution takes a slot of the account's `status` limit, as
/// a worker's does: with the fleet's next slots taken, it waits for its own (a hold on
/// the provider stops payments, not status queries).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payments_resolve_waits_for_a_status_slot_and_takes_it() {
    let limit = Limit {
        per_second: 1,
        burst: 1,
    };
    let mut s = common::settings("t-ops-resolve-rl");
    s.rate_limit.limits.insert(
        "ecommpay".into(),
        [("default".into(), [("status".into(), limit)].into())].into(),
    );
    let app = spawn_app_with(s, 1).await;
    paid_without_a_callback(&app, "res-rl").await;
    app.cli_ok(&[
        "hold",
        "ecommpay",
        "--reason",
        "provider incident",
        "--by",
        "ops-bob",
    ])
    .await;
    // Other status queries of the fleet have the next three seconds' slots.
    let s = &app.fleet.settings;
    let conn = payfleet::state::RedisConn::open(&s.redis).unwrap();
    let global = Global::new(conn, &s.redis.key_prefix);
    let rate = RateKey::new(ProviderName::Ecommpay, None, STATUS);
    let take = async || {
        let far = Duration::from_secs(10);
        match global.reserve(&rate, limit, 1, far, None).await.unwrap() {
            Answer::Reserved(wait) => wait,
            other => panic!("{other:?}"),
        }
    };
    let started = Instant::now();
    for _ in 0..3 {
        take().await;
    }
    let out = app
        .cli_ok(&[&resolve("res-rl", "succeeded")[..], &["--json"]].concat())
        .await;
    let waited = started.elapsed();
    let done: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(
        waited >= Duration::from_secs(2),
        "it asked the provider without waiting for its slot ({waited:?})"
    );
    // It took the slot it waited for (the fourth second's): the next is the fifth's.
    let next = Instant::now() + take().await;
    assert!(
        next >= started + Duration::from_millis(3500),
        "{:?}",
        next - started
    );
    assert_eq!(app.terminal("res-rl").await.status, EventStatus::Succeeded);
    app.stop().await;
}
