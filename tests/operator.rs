//! The operators' commands against a real fleet: payments read from the live Redis, and
//! dead letters listed, shown and replayed without losing one or paying one twice.

mod common;

use common::{payout, spawn_app, spawn_app_keeping_dead_letters};
use payfleet::bus::DeliveryInfo;
use payfleet::contract::operator::OperatorAction;
use payfleet::contract::{EventStatus, FingerprintKey, IdempotencyKey};
use payfleet::ops::dead::{self, Replay};
use payfleet::ops::judge::{Verdict, Why};
use payfleet::ops::payments::{self, Filter};
use payfleet::state::State;
use payfleet::telemetry::label::DeadLetterReason;
use payfleet_sim::faults::CallbackFaults;
use serde_json::Value;
use std::time::{Duration, Instant};

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payments_show_and_list_read_real_payments() {
    let app = spawn_app("t-ops-pay", 1).await;
    app.publish(&payout("ops-p1", 200000, "KZT", "1")).await;
    assert_eq!(app.terminal("ops-p1").await.status, EventStatus::Succeeded);
    app.publish(&payout("ops-p2", 400000, "KZT", "2")).await;
    assert_eq!(app.terminal("ops-p2").await.status, EventStatus::Succeeded);
    // One that stays open: its callback is lost, and the reconciler's first look at a
    // HomeBank payout is 15 minutes away.
    let mut faults = app.fleet.sandbox.faults();
    faults.callbacks = CallbackFaults {
        loss_rate: 1.0,
        ..Default::default()
    };
    app.fleet.sandbox.set_faults(faults);
    app.publish(&payout("ops-p3", 600000, "KZT", "3")).await;
    app.wait_for_state("ops-p3", State::Submitted).await;
    let store = app.store().await;

    let p = payments::show(&store, &key("ops-p1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.state, "succeeded");
    assert_eq!((p.method, p.operation), (Some("homebank"), Some("payout")));
    let amount = p.amount.as_ref().unwrap();
    assert_eq!((amount.minor, amount.currency), (200000, "KZT"));
    assert_eq!(amount.decimal, "2000.00");
    assert_eq!(p.provider_payment_id.as_deref(), Some("ops-p1"));
    assert_eq!(p.attempts, 1);
    assert!(p.lease.is_none(), "settled: no lease");
    let succeeded = p.events.iter().find(|e| e.status == "succeeded");
    let succeeded = succeeded.unwrap_or_else(|| panic!("{:?}", p.events));
    assert_eq!(succeeded.publication, "published");
    assert!(succeeded.published_at.is_some(), "its confirm time is kept");
    assert!(
        payments::show(&store, &key("ops-none"))
            .await
            .unwrap()
            .is_none()
    );

    let listed = |filter: Filter| {
        let store = store.clone();
        async move {
            let found = payments::list(&store, &filter, 100).await.unwrap();
            found
                .into_iter()
                .map(|p| p.idempotency_key)
                .collect::<Vec<_>>()
        }
    };
    let state = |s| Filter {
        state: Some(s),
        ..Filter::default()
    };
    assert_eq!(listed(state(State::Succeeded)).await, ["ops-p1", "ops-p2"]);
    assert_eq!(
        listed(Filter::default()).await,
        ["ops-p1", "ops-p2", "ops-p3"]
    );
    // An open state is read from the open index.
    assert_eq!(listed(state(State::Submitted)).await, ["ops-p3"]);
    assert!(listed(state(State::Unknown)).await.is_empty());
    let epay = Filter {
        provider: Some(payfleet::contract::ProviderName::Epay),
        ..Filter::default()
    };
    assert!(listed(epay).await.is_empty());
    let old = Filter {
        older_than: Some(Duration::from_secs(3600)),
        ..Filter::default()
    };
    assert!(listed(old).await.is_empty());

    // The binary, as an operator runs it.
    let out = app.cli_ok(&["payments", "show", "ops-p1", "--json"]).await;
    let shown: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(shown["state"], "succeeded");
    assert_eq!(shown["amount"]["minor"], 200000);
    assert_eq!(shown["amount"]["decimal"], "2000.00");
    assert_eq!(shown["provider_payment_id"], "ops-p1");
    let out = app
        .cli_ok(&["payments", "list", "--state", "submitted", "--json"])
        .await;
    let open: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(open[0]["idempotency_key"], "ops-p3", "{open}");
    let table = app.cli_ok(&["payments", "show", "ops-p1"]).await;
    assert!(
        table.contains("2000.00 KZT (200000 minor units)"),
        "{table}"
    );
    let table = app
        .cli_ok(&["payments", "list", "--older-than", "0s"])
        .await;
    assert!(table.contains("3 payment(s)"), "{table}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letters_are_listed_and_replayed_once_each() {
    let mut app = spawn_app_keeping_dead_letters("t-ops-dead", 0).await;
    let (url, names) = (app.fleet.settings.amqp.url.clone(), app.fleet.names());
    // A valid payout caught in a crash loop: the worker dead-letters it before any
    // claim. Then a body without a key, which only the dead-letter queue can hold.
    app.publish(&payout("ops-dead-1", 200000, "KZT", "7")).await;
    let limit = app.fleet.settings.amqp.delivery_limit;
    app.hand_back("ecommpay.payout", limit - 1).await;
    app.publish_raw("ecommpay.payout", br#"{"not": "a command"}"#)
        .await;
    app.fleet.add_worker().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.dead_depth().await < 2 {
        assert!(Instant::now() < deadline, "both dead-lettered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let listing = dead::list(&url, &names).await.unwrap();
    assert_eq!(listing.letters.len(), 2, "{listing:?}");
    assert_eq!(listing.by_class["delivery_limit"], 1, "{listing:?}");
    assert_eq!(listing.by_class["undecodable"], 1, "{listing:?}");
    // The worker takes both at once: either may have been dead-lettered first.
    let (valid, undecodable) = match &listing.letters[..] {
        [a, b] if a.idempotency_key.is_some() => (a, b),
        [a, b] => (b, a),
        _ => unreachable!(),
    };
    assert_eq!(valid.idempotency_key.as_deref(), Some("ops-dead-1"));
    assert_eq!(valid.routing_key, "ecommpay.payout");
    assert!(valid.reason.contains("without finishing"), "{valid:?}");
    assert_eq!(undecodable.idempotency_key, None);
    assert!(
        undecodable.reason.contains("cannot decode"),
        "{undecodable:?}"
    );
    let ids = |l: &dead::Listing| l.letters.iter().map(|l| l.id.clone()).collect::<Vec<_>>();
    let again = dead::list(&url, &names).await.unwrap();
    assert_eq!(
        ids(&again),
        ids(&listing),
        "reading loses and reorders nothing"
    );
    let shown = dead::show(&url, &names, &valid.id).await.unwrap();
    assert_eq!(shown.len(), 1);
    assert!(shown[0].body.contains("ops-dead-1"), "{:?}", shown[0]);
    assert_eq!(
        shown[0].headers["x-payfleet-reason-class"],
        "delivery_limit"
    );

    // A dry run, by the binary: each verdict, nothing changed.
    let out = app
        .cli_ok(&["dead", "replay", "--all", "--dry-run", "--json"])
        .await;
    let judged: Value = serde_json::from_str(&out).expect("one JSON document");
    let judged_of = |id: &str| {
        let all = judged.as_array().expect("an array");
        all.iter().find(|j| j["id"] == id).expect("judged").clone()
    };
    let on_valid = judged_of(&valid.id);
    assert_eq!(on_valid["verdict"]["action"], "republish", "{judged}");
    assert_eq!(on_valid["verdict"]["why"], "never_sent", "{judged}");
    assert_eq!(on_valid["republished"], false);
    let on_undecodable = judged_of(&undecodable.id);
    assert_eq!(on_undecodable["verdict"]["action"], "stay_dead", "{judged}");
    let table = app.cli_ok(&["dead", "replay", "--all", "--dry-run"]).await;
    assert!(table.contains("would republish"), "{table}");
    let table = app.cli_ok(&["dead", "list"]).await;
    assert!(table.contains("delivery_limit 1, undecodable 1"), "{table}");
    app.cli_ok(&["dead", "show", &valid.id]).await;
    assert_eq!(ids(&dead::list(&url, &names).await.unwrap()), ids(&listing));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.events_for("ops-dead-1").is_empty(), "nothing was sent");
    assert_eq!(app.state("ops-dead-1").await, None);

    // The replay: the valid one is paid once, the undecodable one stays.
    let fingerprint_key =
        FingerprintKey::new(app.fleet.settings.secrets.epay_fingerprint().unwrap());
    let replay = |dry_run| Replay {
        ids: None,
        dry_run,
        by: Some("ops-test"),
        fingerprint_key: &fingerprint_key,
        retention_ms: app.fleet.settings.redis.retention_ms,
    };
    let store = app.store().await;
    let done = dead::replay(&url, &names, &store, &replay(false))
        .await
        .unwrap();
    assert_eq!(done.len(), 2);
    for d in &done {
        let is_valid = d.letter.id == valid.id;
        assert_eq!(d.republished, is_valid, "{d:?}");
        if is_valid {
            let never_sent = Why::NeverSent;
            assert_eq!(d.verdict, Verdict::Republish { why: never_sent });
        }
    }
    assert_eq!(
        app.terminal("ops-dead-1").await.status,
        EventStatus::Succeeded
    );
    let left = dead::list(&url, &names).await.unwrap();
    assert_eq!(ids(&left), std::slice::from_ref(&undecodable.id));
    let operator = app.events.operator_events();
    assert_eq!(operator.len(), 1, "{operator:?}");
    assert_eq!(operator[0].action, OperatorAction::DeadReplayed);
    assert_eq!(operator[0].by, "ops-test");
    assert_eq!(operator[0].target, "ops-dead-1");
    assert!(operator[0].reason.contains(&valid.id), "{operator:?}");

    // Dead-lettered again once final, its copy is removed: its event is out, so nothing
    // is sent, and the removal is an operator event.
    app.publisher
        .dead_letter(
            "ecommpay.payout",
            payout("ops-dead-1", 200000, "KZT", "7").as_bytes(),
            &DeliveryInfo::default(),
            DeadLetterReason::DeliveryLimit,
            "delivered 20 times without finishing",
        )
        .await
        .unwrap();
    let table = app.cli_ok(&["dead", "replay", "--all", "--dry-run"]).await;
    assert!(table.contains("would remove"), "{table}");
    assert_eq!(dead::list(&url, &names).await.unwrap().letters.len(), 2);
    let done = dead::replay(&url, &names, &store, &replay(false))
        .await
        .unwrap();
    let final_copy = done.iter().find(|d| d.letter.idempotency_key.is_some());
    let final_copy = final_copy.unwrap_or_else(|| panic!("{done:?}"));
    assert_eq!(
        final_copy.verdict,
        Verdict::AlreadyFinal { state: "succeeded" }
    );
    assert!(
        final_copy.removed && !final_copy.republished,
        "{final_copy:?}"
    );
    let left = dead::list(&url, &names).await.unwrap();
    assert_eq!(ids(&left), std::slice::from_ref(&undecodable.id));

    tokio::time::sleep(Duration::from_millis(500)).await;
    let terminal = app
        .events_for("ops-dead-1")
        .into_iter()
        .filter(|e| e.status.is_terminal())
        .count();
    assert_eq!(terminal, 1, "exactly one terminal event");
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.get("ops-dead-1"), Some(&1), "{stats:?}");
    assert!(stats.executed_more_than_once.is_empty(), "{stats:?}");
    let operator = app.events.operator_events();
    assert_eq!(operator.len(), 2, "{operator:?}");
    assert_eq!(operator[1].action, OperatorAction::DeadRemoved);
    assert_eq!(operator[1].target, "ops-dead-1");
    assert!(
        operator[1].reason.contains("nothing was sent"),
        "{operator:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_payment_that_reached_the_provider_is_not_sent_again() {
    const PAYOUT: &str = "POST /v2/payment/cash-out-kz/homebank/payout";
    let app = spawn_app_keeping_dead_letters("t-ops-reached", 1).await;
    let (url, names) = (app.fleet.settings.amqp.url.clone(), app.fleet.names());
    // Sent and accepted; its callback is lost, so it waits as `submitted`.
    let mut faults = app.fleet.sandbox.faults();
    faults.callbacks = CallbackFaults {
        loss_rate: 1.0,
        ..Default::default()
    };
    app.fleet.sandbox.set_faults(faults);
    let body = payout("ops-reached", 200000, "KZT", "9");
    app.publish(&body).await;
    app.wait_for_state("ops-reached", State::Submitted).await;
    // A copy of it dead-lettered, as a crash loop of a later copy would leave it.
    app.publisher
        .dead_letter(
            "ecommpay.payout",
            body.as_bytes(),
            &DeliveryInfo::default(),
            DeadLetterReason::DeliveryLimit,
            "delivered 20 times without finishing",
        )
        .await
        .unwrap();
    let fingerprint_key =
        FingerprintKey::new(app.fleet.settings.secrets.epay_fingerprint().unwrap());
    let replay = Replay {
        ids: None,
        dry_run: false,
        by: None,
        fingerprint_key: &fingerprint_key,
        retention_ms: app.fleet.settings.redis.retention_ms,
    };
    let done = dead::replay(&url, &names, &app.store().await, &replay)
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    let reached = Why::MayHaveReached;
    assert_eq!(done[0].verdict, Verdict::Republish { why: reached });
    assert!(done[0].republished);
    assert_eq!(app.dead_depth().await, 0);
    // The worker finds the record waiting for the provider: it waits too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.state("ops-reached").await, Some(State::Submitted));
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.requests.get(PAYOUT), Some(&1), "{stats:?}");
    assert_eq!(stats.executed.get("ops-reached"), Some(&1), "{stats:?}");
    assert!(
        app.events_for("ops-reached")
            .iter()
            .all(|e| !e.status.is_terminal())
    );
    app.stop().await;
}
