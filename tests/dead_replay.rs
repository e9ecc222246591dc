//! `payfleet dead replay --all` after a run with provider faults in which deliveries
//! were cut short (a worker killed mid-call, a crash loop, a delivery limit of 2): it
//! sends no payment a second time (the sandbox's executions and submissions prove it),
//! brings every replayable command to one terminal event, leaves what cannot be
//! replayed dead with its reason, and a second replay changes nothing.

mod common;

use common::{TestFleet, google_pay, payout, spawn_keeping_dead_letters_with};
use payfleet::bus::DeliveryInfo;
use payfleet::contract::IdempotencyKey;
use payfleet::contract::operator::OperatorAction;
use payfleet::ops::dead;
use payfleet::telemetry::label::DeadLetterReason;
use payfleet_sim::Faults;
use payfleet_sim::faults::{CallbackFaults, EndpointFaults};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const PAYOUT: &str = "POST /v2/payment/cash-out-kz/homebank/payout";
const GOOGLE_PAY: &str = "POST /payment/cryptopay";
const STATUS: &str = "POST /v2/payment/status";

fn settings() -> payfleet_tools::settings::FleetSettings {
    let mut s = common::settings("t-dead-replay");
    // A delivery cut short once is dead-lettered at the next: a crash loop, shortened.
    s.amqp.delivery_limit = 2;
    // A killed worker's lease runs out soon, so a replayed payment is asked about soon.
    s.worker.lease_ms = 2000;
    // Gate's 10 s status delay becomes 10 ms, HomeBank's 15 min basic time 0.9 s.
    s.reconciler.time_scale = 0.001;
    // Only the workers and the replay settle payments here: a reconciler would settle
    // the dead-lettered ones before the replay could show what it does with them.
    s.reconciler.embedded = false;
    // The faults would trip it, and what it holds waits 30 s.
    s.breaker.enabled = false;
    s
}

fn faults(endpoints: &[(&str, EndpointFaults)], callbacks: CallbackFaults) -> Faults {
    Faults {
        endpoints: endpoints
            .iter()
            .map(|(e, f)| (e.to_string(), f.clone()))
            .collect(),
        callbacks,
        ..Default::default()
    }
}

/// A bad day at both providers: 5xx before and after executing, dropped connections,
/// slow answers, late and repeated callbacks.
fn storm() -> Faults {
    let payment = EndpointFaults {
        error_rate: 0.1,
        error_after_rate: 0.1,
        reset_rate: 0.05,
        slow_ms: 150,
        ..Default::default()
    };
    let status = EndpointFaults {
        error_rate: 0.05,
        slow_ms: 100,
        ..Default::default()
    };
    // None is lost: nothing here would settle what waits for one (no reconciler).
    let callbacks = CallbackFaults {
        duplicate_rate: 0.2,
        late_rate: 0.2,
        late_ms: 500,
        ..Default::default()
    };
    // An epay payment that got no answer is settled by check-status, whose "not found"
    // is not final: its faults all come after the payment executed.
    let epay = EndpointFaults {
        error_after_rate: 0.2,
        slow_ms: 150,
        ..Default::default()
    };
    faults(
        &[(PAYOUT, payment), (GOOGLE_PAY, epay), (STATUS, status)],
        callbacks,
    )
}

/// Payments executed, their answers held past the moment the worker is killed, their
/// callbacks lost: only a status query can tell what became of them.
fn hang() -> Faults {
    let held = EndpointFaults {
        timeout_rate: 1.0,
        timeout_ms: 8000,
        ..Default::default()
    };
    let callbacks = CallbackFaults {
        loss_rate: 1.0,
        ..Default::default()
    };
    faults(&[(PAYOUT, held.clone()), (GOOGLE_PAY, held)], callbacks)
}

/// A worker process on the fleet's settings, to be killed mid-call.
fn worker_process(s: &payfleet::config::Settings) -> tokio::process::Child {
    let delays: Vec<String> = s
        .worker
        .retry_delays_ms
        .iter()
        .map(u64::to_string)
        .collect();
    common::worker_process(s, "dead-replay-w1")
        .env(
            "PAYFLEET__AMQP__DELIVERY_LIMIT",
            s.amqp.delivery_limit.to_string(),
        )
        .env("PAYFLEET__WORKER__LEASE_MS", s.worker.lease_ms.to_string())
        .env("PAYFLEET__WORKER__RETRY_DELAYS_MS", delays.join(","))
        .env(
            "PAYFLEET__RECONCILER__TIME_SCALE",
            s.reconciler.time_scale.to_string(),
        )
        .env("PAYFLEET__BREAKER__ENABLED", "false")
        .spawn()
        .expect("the worker starts")
}

fn keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("dr-{prefix}-{i}")).collect()
}

/// The keys of the dead letters in the queue, and how many there are.
async fn dead_keys(app: &TestFleet) -> (BTreeSet<String>, usize) {
    let names = app.fleet.names();
    let listing = dead::list(&app.fleet.settings.amqp.url, &names)
        .await
        .unwrap();
    let keys = listing
        .letters
        .iter()
        .filter_map(|l| l.idempotency_key.clone())
        .collect();
    (keys, listing.letters.len())
}

/// Waits until every key has a terminal event or a dead letter, and the queue holds at
/// least `dead_at_least`.
async fn wait_until_settled_or_dead(app: &TestFleet, all: &[String], dead_at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (dead, count) = dead_keys(app).await;
        let terminal = app.events.terminal_by_key();
        let open: Vec<&String> = all
            .iter()
            .filter(|k| !dead.contains(*k))
            .filter(|k| !terminal.contains_key(&IdempotencyKey::parse(k.as_str()).unwrap()))
            .collect();
        if open.is_empty() && count >= dead_at_least {
            return;
        }
        if Instant::now() > deadline {
            let mut states = Vec::new();
            for k in open {
                states.push((k, app.state(k).await));
            }
            panic!("neither settled nor dead: {states:?}; {count} dead letter(s)");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `payfleet dead replay --all ARGS --json`: each dead letter's verdict, by id.
async fn replay(app: &TestFleet, args: &[&str]) -> Vec<Value> {
    let out = app
        .cli_ok(&[&["dead", "replay", "--all", "--json"], args].concat())
        .await;
    let judged: Value = serde_json::from_str(&out).expect("one JSON document");
    judged.as_array().expect("an array").clone()
}

fn action(j: &Value) -> (&str, &str) {
    let v = &j["verdict"];
    let detail = v["why"].as_str().or(v["reason"].as_str());
    let detail = detail.or(v["state"].as_str());
    (v["action"].as_str().unwrap(), detail.unwrap_or_default())
}

fn key_of(j: &Value) -> Option<&str> {
    j["idempotency_key"].as_str()
}

/// Terminal events by key, over the whole run.
fn terminal_counts(app: &TestFleet) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in app.events.events() {
        if e.status.is_terminal() {
            *counts
                .entry(e.idempotency_key.as_str().to_owned())
                .or_default() += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_after_provider_faults_pays_nothing_twice_and_settles_every_replayable_command() {
    let mut app = spawn_keeping_dead_letters_with(settings(), 0).await;
    let sandbox = app.fleet.sandbox.clone();

    // Crash-looped before any worker claimed them: never sent.
    let never = keys("never", 4);
    for k in &never {
        app.publish(&payout(k, 200000, "KZT", "2")).await;
    }
    app.hand_back_each("ecommpay.payout", never.len(), 1).await;
    let mut w1 = worker_process(&app.fleet.settings);

    // A batch on a bad day, with bodies no worker can decode among it.
    sandbox.set_faults(storm());
    let (payouts, gpays) = (keys("po", 24), keys("gp", 4));
    for k in &payouts {
        app.publish(&payout(k, 200000, "KZT", "1")).await;
    }
    for k in &gpays {
        app.publish(&google_pay(k, 10_000, "1111")).await;
    }
    app.publish_raw("ecommpay.payout", b"not a command").await;
    app.publish_raw("ecommpay.payout", br#"{"idempotency_key": 7}"#)
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Then the answers stop coming back, and the worker dies with payments executed.
    sandbox.set_faults(hang());
    let (hung, hung_gpays) = (keys("hung", 6), keys("hung-gp", 2));
    for k in &hung {
        app.publish(&payout(k, 400000, "KZT", "1")).await;
    }
    for k in &hung_gpays {
        app.publish(&google_pay(k, 20_000, "1111")).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !hung
        .iter()
        .all(|k| sandbox.stats().executed.contains_key(k))
    {
        assert!(Instant::now() < deadline, "the provider executed them");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    w1.start_kill().unwrap();
    w1.wait().await.unwrap();

    // The provider is back; a new worker dead-letters what the dead one held.
    sandbox.set_faults(Faults::default());
    app.fleet.add_worker().await.unwrap();
    let all: Vec<String> = [&never, &payouts, &gpays, &hung, &hung_gpays]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let least = never.len() + hung.len() + hung_gpays.len() + 2;
    wait_until_settled_or_dead(&app, &all, least).await;
    // A payment's key reused by another body.
    let taken = payouts
        .iter()
        .find(|k| sandbox.stats().executed.contains_key(*k))
        .expect("one was paid");
    app.publish(&payout(taken, 600000, "KZT", "1")).await;
    // A copy of a paid payout, dead-lettered as a crash loop of a late copy leaves it.
    let terminal = app.events.terminal_by_key();
    let (dead, _) = dead_keys(&app).await;
    let settled = payouts
        .iter()
        .rev()
        .filter(|k| *k != taken && !dead.contains(*k))
        .find(|k| terminal.contains_key(&IdempotencyKey::parse(k.as_str()).unwrap()))
        .expect("another was settled");
    app.publisher
        .dead_letter(
            "ecommpay.payout",
            payout(settled, 200000, "KZT", "1").as_bytes(),
            &DeliveryInfo::default(),
            DeadLetterReason::DeliveryLimit,
            "delivered 2 times without finishing",
        )
        .await
        .unwrap();
    wait_until_settled_or_dead(&app, &all, least + 2).await;

    // A dry run: every verdict, nothing changed.
    let before = sandbox.stats();
    let (_, dead_before) = dead_keys(&app).await;
    let events_before = app.events.events().len();
    let judged = replay(&app, &["--dry-run"]).await;
    assert_eq!(judged.len(), dead_before, "{judged:#?}");
    let verdict_of = |k: &str| -> Vec<(String, String)> {
        judged
            .iter()
            .filter(|j| key_of(j) == Some(k))
            .map(|j| {
                let (a, d) = action(j);
                (a.to_owned(), d.to_owned())
            })
            .collect()
    };
    for k in &never {
        let republish = ("republish".to_owned(), "never_sent".to_owned());
        assert_eq!(verdict_of(k), [republish], "{k}");
    }
    for k in &hung {
        let v = verdict_of(k);
        assert!(!v.is_empty(), "{k} was dead-lettered");
        for (a, why) in v {
            assert_eq!(
                (a.as_str(), why.as_str()),
                ("republish", "may_have_reached")
            );
        }
    }
    for k in &hung_gpays {
        let v = verdict_of(k);
        assert!(!v.is_empty(), "{k} was dead-lettered");
        assert!(
            v.iter()
                .all(|(a, r)| a == "stay_dead" && r.contains("redacted")),
            "a card payment's dead letter cannot be sent again: {v:?}"
        );
    }
    let undecodable: Vec<&Value> = judged.iter().filter(|j| key_of(j).is_none()).collect();
    assert_eq!(undecodable.len(), 2, "{judged:#?}");
    for j in &undecodable {
        let (a, reason) = action(j);
        assert_eq!(a, "stay_dead");
        assert!(reason.contains("does not decode"), "{reason}");
    }
    assert_eq!(
        verdict_of(settled),
        [("already_final".to_owned(), "succeeded".to_owned())]
    );
    assert!(
        verdict_of(taken)
            .iter()
            .any(|(a, r)| a == "stay_dead" && r.contains("another payment")),
        "{:?}",
        verdict_of(taken)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        dead_keys(&app).await.1,
        dead_before,
        "a dry run removes nothing"
    );
    assert_eq!(
        sandbox.stats().requests,
        before.requests,
        "and sends nothing"
    );
    assert_eq!(app.events.events().len(), events_before);

    // The replay.
    let done = replay(&app, &["--by", "ops-replay"]).await;
    let republished: BTreeSet<String> = done
        .iter()
        .filter(|j| j["republished"] == true)
        .map(|j| key_of(j).expect("a key").to_owned())
        .collect();
    for j in &done {
        let (act, _) = action(j);
        assert_eq!(j["republished"] == true, act == "republish", "{j}");
        assert_eq!(j["removed"] == true, act == "already_final", "{j}");
    }
    assert!(never.iter().chain(&hung).all(|k| republished.contains(k)));
    let replayed: Vec<IdempotencyKey> = republished
        .iter()
        .map(|k| IdempotencyKey::parse(k.as_str()).unwrap())
        .collect();
    assert!(
        app.events
            .wait_terminal(&replayed, Duration::from_secs(30))
            .await,
        "every replayed command ends; terminal: {:?}",
        terminal_counts(&app)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Nothing was paid or sent twice: a payout was submitted again only where the
    // provider had never executed it, and no submission was refused as a duplicate.
    let after = sandbox.stats();
    assert!(after.executed_more_than_once.is_empty(), "{after:?}");
    assert_eq!(
        (
            before.duplicate_submissions_refused,
            after.duplicate_submissions_refused
        ),
        (0, 0),
        "a payment was sent to a provider that already had it (before, after the replay)"
    );
    let unexecuted = republished
        .iter()
        .filter(|k| !before.executed.contains_key(*k))
        .count() as u64;
    let sent = |s: &payfleet_sim::Stats| s.requests.get(PAYOUT).copied().unwrap_or(0);
    assert_eq!(
        sent(&after) - sent(&before),
        unexecuted,
        "payout submissions after the replay: one per payment the provider never had"
    );
    // Every payout ended once, as the provider executed it.
    let terminal = terminal_counts(&app);
    let by_key = app.events.terminal_by_key();
    for k in never.iter().chain(&payouts).chain(&hung) {
        assert!(
            terminal.get(k).copied().unwrap_or(0) <= 1,
            "{k}: {terminal:?}"
        );
        let event = &by_key[&IdempotencyKey::parse(k.as_str()).unwrap()][0];
        let paid = event.status == payfleet::contract::EventStatus::Succeeded;
        let executed = after.executed.get(k).copied().unwrap_or(0);
        assert_eq!(executed, u64::from(paid), "{k}: {event:?}");
    }
    for k in gpays.iter().chain(&hung_gpays) {
        assert!(
            terminal.get(k).copied().unwrap_or(0) <= 1,
            "{k}: {terminal:?}"
        );
    }
    // What stays dead is there with its reason; each replay and removal is an
    // operator event.
    let stays: BTreeSet<String> = done
        .iter()
        .filter(|j| j["republished"] != true && j["removed"] != true)
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect();
    let left = dead::list(&app.fleet.settings.amqp.url, &app.fleet.names())
        .await
        .unwrap();
    let left_ids: BTreeSet<String> = left.letters.iter().map(|l| l.id.clone()).collect();
    assert_eq!(left_ids, stays);
    let operator = app.events.operator_events();
    let count = |field: &str| done.iter().filter(|j| j[field] == true).count();
    let actions = |action| operator.iter().filter(|e| e.action == action).count();
    assert_eq!(actions(OperatorAction::DeadReplayed), count("republished"));
    assert_eq!(actions(OperatorAction::DeadRemoved), count("removed"));
    assert_eq!(count("removed"), 1, "{done:#?}");
    assert!(
        operator.iter().all(|e| e.by == "ops-replay"),
        "{operator:?}"
    );

    // A second replay changes nothing and sends nothing.
    let events_before = app.events.events().len();
    let again = replay(&app, &["--by", "ops-replay"]).await;
    assert!(
        again
            .iter()
            .all(|j| j["republished"] == false && j["removed"] == false),
        "{again:#?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let last = sandbox.stats();
    assert_eq!(
        last.requests, after.requests,
        "a second replay sent something"
    );
    assert_eq!(app.events.events().len(), events_before);
    assert_eq!(app.events.operator_events().len(), operator.len());
    assert_eq!(dead_keys(&app).await.1, left.letters.len());
    app.stop().await;
}
