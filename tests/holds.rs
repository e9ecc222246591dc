//! Operators' holds against a running fleet: `payfleet hold` stops new requests to a
//! provider within seconds, fleet-wide; commands wait in the delay queues (nothing
//! failed, nothing dead-lettered); payments already sent still settle by status
//! queries; `payfleet release` lets the held commands go, each sent once.

mod common;

use common::{payout, spawn_app_with};
use payfleet::contract::EventStatus;
use payfleet::contract::hold::Hold;
use payfleet::contract::operator::OperatorAction;
use payfleet::state::State;
use payfleet_sim::Faults;
use payfleet_sim::faults::{CallbackFaults, EndpointFaults};
use std::time::Duration;

const PAYOUT: &str = "POST /v2/payment/cash-out-kz/homebank/payout";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_stops_new_requests_while_payments_already_sent_settle() {
    let mut s = common::settings("t-hold");
    // HomeBank's 15 min basic time becomes 4.5 s: the payment sent before the hold is
    // asked about only once the hold is in force.
    s.reconciler.time_scale = 0.005;
    s.reconciler.interval_ms = 100;
    s.worker.holds_refresh_ms = 200;
    let app = spawn_app_with(s, 2).await;
    // Callbacks lost: a payment already sent settles only by a status query.
    app.fleet.sandbox.set_faults(Faults {
        callbacks: CallbackFaults {
            loss_rate: 1.0,
            ..Default::default()
        },
        ..Default::default()
    });
    app.publish(&payout("hold-sent", 200000, "KZT", "1")).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app.state("hold-sent").await != Some(State::Submitted) {
        assert!(std::time::Instant::now() < deadline, "never submitted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let held = app
        .cli_ok(&[
            "hold",
            "ecommpay",
            "--reason",
            "incident 42",
            "--by",
            "alice",
        ])
        .await;
    assert!(held.contains("held ecommpay"), "{held}");
    let listed: Vec<Hold> = serde_json::from_str(&app.cli_ok(&["holds", "--json"]).await).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0].by.as_str(), listed[0].reason.as_str()),
        ("alice", "incident 42")
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.state("hold-sent").await, Some(State::Submitted));

    app.publish(&payout("hold-new", 400000, "KZT", "1")).await;
    // The payment sent before the hold settles by a status query while it is in force.
    let settled = app.terminal("hold-sent").await;
    assert_eq!(settled.status, EventStatus::Succeeded, "{settled:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.requests.get(PAYOUT), Some(&1), "held: {stats:?}");
    assert!(
        app.events_for("hold-new").is_empty(),
        "{:?}",
        app.events_for("hold-new")
    );
    assert_eq!(app.state("hold-new").await, Some(State::Received));
    assert!(app.dead.all().is_empty(), "{:?}", app.dead.all());

    let released = app.cli_ok(&["release", "ecommpay", "--by", "bob"]).await;
    assert!(released.contains("released ecommpay"), "{released}");
    let sent = app.terminal("hold-new").await;
    assert_eq!(sent.status, EventStatus::Succeeded, "{sent:?}");
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.requests.get(PAYOUT), Some(&2), "{stats:?}");
    assert!(stats.executed_more_than_once.is_empty(), "{stats:?}");
    assert!(app.dead.all().is_empty());

    let audit = app.events.operator_events();
    let actions: Vec<_> = audit.iter().map(|e| (e.action, e.by.as_str())).collect();
    assert_eq!(
        actions,
        [
            (OperatorAction::HoldSet, "alice"),
            (OperatorAction::HoldReleased, "bob")
        ]
    );
    assert!(audit.iter().all(|e| e.target == "ecommpay"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_names_a_configured_account_and_a_release_an_existing_hold() {
    let app = spawn_app_with(common::settings("t-hold-bad"), 0).await;
    for args in [
        &["hold", "paypal", "--reason", "r", "--by", "a"][..],
        &["hold", "epay/other", "--reason", "r", "--by", "a"],
        &["release", "ecommpay", "--by", "a"],
        // Card data never goes to Redis or an operator event, not even by mistake.
        &[
            "hold",
            "ecommpay",
            "--reason",
            "card 4405639704015096",
            "--by",
            "a",
        ],
    ] {
        let said = app.cli_refused(args).await;
        assert!(!said.is_empty(), "{args:?} says why");
        assert!(!said.contains("4405639704015096"), "{said}");
    }
    let listed = app.cli_ok(&["holds"]).await;
    assert!(listed.contains("no holds"), "{listed}");
    assert!(app.events.operator_events().is_empty());
    app.stop().await;
}

/// The breaker: Gate drops every payout request, so the account trips and is held by
/// the breaker; the held payouts wait (not failed, not dead-lettered) while its probes
/// fail; once Gate answers again a probe lifts the hold and each payout is paid once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_breaker_holds_a_failing_account_and_its_probe_lifts_the_hold() {
    let mut s = common::settings("t-breaker");
    // A dropped request may have been processed: those payouts go status-first, and
    // the reconciler (HomeBank's times scaled down) asks until Gate answers.
    s.reconciler.time_scale = 0.001;
    s.reconciler.interval_ms = 100;
    s.worker.holds_refresh_ms = 200;
    s.breaker.window_ms = 10_000;
    s.breaker.min_requests = 4;
    s.breaker.probe_every_ms = 500;
    let app = spawn_app_with(s, 1).await;
    let down = EndpointFaults {
        reset_rate: 1.0,
        ..Default::default()
    };
    app.fleet.sandbox.set_faults(Faults {
        endpoints: [("*".to_owned(), down)].into(),
        ..Default::default()
    });
    let keys: Vec<String> = (0..4).map(|i| format!("breaker-{i}")).collect();
    for key in &keys {
        app.publish(&payout(key, 200000, "KZT", "1")).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let tripped = loop {
        let holds: Vec<Hold> =
            serde_json::from_str(&app.cli_ok(&["holds", "--json"]).await).unwrap();
        if let Some(h) = holds.into_iter().find(|h| h.automatic) {
            break h;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the breaker never tripped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(tripped.target.to_string(), "ecommpay/default");
    assert_eq!(tripped.by, "breaker");
    // Held, while the probes keep failing: nothing ends, nothing is dead-lettered.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for key in &keys {
        let terminal = app
            .events_for(key)
            .into_iter()
            .filter(|e| e.status.is_terminal());
        assert_eq!(terminal.count(), 0, "{key}: {:?}", app.events_for(key));
    }
    assert!(app.dead.all().is_empty(), "{:?}", app.dead.all());
    let stats = app.fleet.sandbox.stats();
    assert!(
        stats.faults.get("reset").copied().unwrap_or(0) >= 5,
        "probes sent: {stats:?}"
    );

    app.fleet.sandbox.set_faults(Faults::default());
    for key in &keys {
        let event = app.terminal(key).await;
        assert_eq!(event.status, EventStatus::Succeeded, "{event:?}");
    }
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.len(), 4, "{stats:?}");
    assert!(stats.executed_more_than_once.is_empty(), "{stats:?}");
    let holds: Vec<Hold> = serde_json::from_str(&app.cli_ok(&["holds", "--json"]).await).unwrap();
    assert!(holds.is_empty(), "the probe lifted it: {holds:?}");
    app.stop().await;
}
