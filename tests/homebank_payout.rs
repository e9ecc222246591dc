//! A HomeBank payout end to end over the real broker and Redis, the sandbox over HTTP.

mod common;

use common::{payout, payout_callback, spawn_app};
use payfleet::contract::EventStatus;
use payfleet::state::State;
use std::time::Duration;

const PAYOUT_ENDPOINT: &str = "POST /v2/payment/cash-out-kz/homebank/payout";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payout_succeeds_end_to_end() {
    let app = spawn_app("t-success", 1).await;
    app.publish(&payout("po-ok-1", 200000, "KZT", "444567"))
        .await;
    let event = app.terminal("po-ok-1").await;
    assert_eq!(event.status, EventStatus::Succeeded);
    assert_eq!(event.payment_id.as_deref(), Some("po-ok-1"));
    assert_eq!(event.amount.unwrap().minor.minor(), 200000);
    assert_eq!(event.provider.as_ref().unwrap().code, "0");
    let statuses: Vec<_> = app.events_for("po-ok-1").iter().map(|e| e.status).collect();
    assert!(statuses.contains(&EventStatus::Succeeded));
    assert_eq!(app.state("po-ok-1").await, Some(State::Succeeded));
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.get("po-ok-1"), Some(&1));
    assert_eq!(stats.requests.get(PAYOUT_ENDPOINT), Some(&1));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decline_ends_declined_with_the_provider_code() {
    let app = spawn_app("t-decline", 1).await;
    app.publish(&payout("po-decl-1", 500000, "KZT", "decline-77"))
        .await;
    let event = app.terminal("po-decl-1").await;
    assert_eq!(event.status, EventStatus::Declined);
    let provider = event.provider.expect("the provider's words");
    assert_eq!(
        (provider.code.as_str(), provider.message.as_str()),
        ("20602", "Time-out")
    );
    assert_eq!(app.state("po-decl-1").await, Some(State::Declined));
    assert!(app.fleet.sandbox.stats().executed.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invalid_command_is_rejected_with_a_reason_and_no_provider_call() {
    let app = spawn_app("t-invalid", 1).await;
    // 3,000.00 KZT: below 4,000.00 only multiples of 2,000.00 are allowed.
    app.publish(&payout("po-bad-amount", 300000, "KZT", "1"))
        .await;
    app.publish(&payout("po-bad-currency", 300000, "INR", "1"))
        .await;
    let mut bad_phone = payout("po-bad-phone", 200000, "KZT", "1");
    bad_phone = bad_phone.replace("77074544579", "12ab");
    app.publish(&bad_phone).await;
    let extra = payout("po-extra-field", 200000, "KZT", "1").replacen('{', r#"{"surprise":1,"#, 1);
    app.publish(&extra).await;
    for (key, needle) in [
        ("po-bad-amount", "multiple of 2000.00"),
        ("po-bad-currency", "INR"),
        ("po-bad-phone", "phone"),
        ("po-extra-field", "surprise"),
    ] {
        let event = app.terminal(key).await;
        assert_eq!(event.status, EventStatus::Rejected, "{key}");
        let reason = event.reason.unwrap_or_default();
        assert!(
            reason.contains(needle),
            "{key}: reason {reason:?} should mention {needle:?}"
        );
        assert_eq!(app.state(key).await, Some(State::Rejected));
    }
    assert!(
        app.fleet.sandbox.stats().requests.is_empty(),
        "no provider call"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_command_twice_and_concurrently_pays_once_and_announces_once() {
    let app = spawn_app("t-dupes", 3).await;
    let body = payout("po-dup-1", 700000, "KZT", "42");
    // Ten copies at once, to three workers, then one more after the outcome.
    futures::future::join_all((0..10).map(|_| app.publish(&body))).await;
    assert_eq!(
        app.terminal("po-dup-1").await.status,
        EventStatus::Succeeded
    );
    app.publish(&body).await;
    // Parked copies come back from the delay queue and must be recognised.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.get("po-dup-1"), Some(&1));
    assert_eq!(
        stats.requests.get(PAYOUT_ENDPOINT),
        Some(&1),
        "one provider call"
    );
    let terminal = app
        .events_for("po-dup-1")
        .into_iter()
        .filter(|e| e.status.is_terminal())
        .count();
    assert_eq!(terminal, 1, "one terminal event");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_key_with_a_different_body_is_refused() {
    let app = spawn_app("t-conflict", 1).await;
    app.publish(&payout("po-same-key", 200000, "KZT", "1"))
        .await;
    assert_eq!(
        app.terminal("po-same-key").await.status,
        EventStatus::Succeeded
    );
    app.publish(&payout("po-same-key", 900000, "KZT", "1"))
        .await;
    let dead = app.dead.wait_for(1).await;
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].1.contains("different body"),
        "reason: {}",
        dead[0].1
    );
    assert!(
        String::from_utf8_lossy(&dead[0].0).contains("900000"),
        "the refused command is kept whole"
    );
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.requests.get(PAYOUT_ENDPOINT), Some(&1));
    assert_eq!(
        app.events_for("po-same-key")
            .iter()
            .filter(|e| e.status.is_terminal())
            .count(),
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_undecodable_body_is_dead_lettered_with_its_reason() {
    let app = spawn_app("t-poison", 1).await;
    app.publish_raw("ecommpay.payout", b"{not json").await;
    app.publish_raw("ecommpay.payout", br#"{"version":1,"amount":1}"#)
        .await;
    let dead = app.dead.wait_for(2).await;
    assert_eq!(dead.len(), 2);
    let reasons: Vec<&str> = dead.iter().map(|d| d.1.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("not JSON")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("idempotency_key is missing")),
        "{reasons:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_callback_with_a_bad_signature_is_refused_and_changes_nothing() {
    let app = spawn_app("t-forged", 1).await;
    app.publish(&payout("po-forged", 200000, "KZT", "1")).await;
    assert_eq!(
        app.terminal("po-forged").await.status,
        EventStatus::Succeeded
    );
    let before = app.settled_event_count("po-forged").await;
    let forged = payout_callback("po-forged", "decline", "20000", "General decline");
    assert_eq!(app.callback(forged.clone(), b"not the secret").await, 400);
    // A forged callback for a payment nobody has seen creates nothing either.
    let unknown = payout_callback("po-never-seen", "success", "0", "Success");
    assert_eq!(app.callback(unknown, b"not the secret").await, 400);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.state("po-forged").await, Some(State::Succeeded));
    assert_eq!(app.state("po-never-seen").await, None);
    assert_eq!(app.events_for("po-forged").len(), before);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicated_callback_publishes_once() {
    let app = spawn_app("t-dup-callback", 1).await;
    let secret = app.secret();
    app.publish(&payout("po-cb-dup", 200000, "KZT", "444567"))
        .await;
    assert_eq!(
        app.terminal("po-cb-dup").await.status,
        EventStatus::Succeeded
    );
    let before = app.settled_event_count("po-cb-dup").await;
    // Its callback again, five times at once and once more later.
    let body = payout_callback("po-cb-dup", "success", "0", "Success");
    let answers =
        futures::future::join_all((0..5).map(|_| app.callback(body.clone(), &secret))).await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    assert_eq!(app.callback(body, &secret).await, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.events_for("po-cb-dup").len(), before);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleet_with_only_ecommpay_configured_pays_a_payout() {
    let mut settings = common::settings("t-ecommpay-only");
    settings.epay.enabled = false;
    settings.secrets.epay_client_secret = None;
    settings.secrets.epay_fingerprint_key = None;
    // The in-process gateway has no epay either.
    let app = common::spawn_app_with(settings, 0).await;
    let s = &app.fleet.settings;
    // A worker process given ECommPay's settings and secret key only.
    let mut worker = common::worker_process(s, "ecommpay-only")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the worker starts");
    let transfer =
        r#"{"version":1,"idempotency_key":"ep-unserved","method":"p2p","operation":"transfer"}"#;
    app.publish_raw("epay.transfer", transfer.as_bytes()).await;
    app.publish(&payout("po-ecommpay-only", 200000, "KZT", "444567"))
        .await;
    if let Ok(Some(status)) = worker.try_wait() {
        let out = worker.wait_with_output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        panic!("the worker exited ({status}): {stderr}");
    }
    let event = app.terminal("po-ecommpay-only").await;
    assert_eq!(event.status, EventStatus::Succeeded);
    // The epay queue is not consumed: its command waits there, unanswered.
    let conn = payfleet::bus::connect(&s.amqp.url, "test-depth")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let epay_queue = app
        .fleet
        .names()
        .command_queue(payfleet::contract::ProviderName::Epay);
    let depth = payfleet::bus::queue_depth(&ch, &epay_queue).await.unwrap();
    assert_eq!(depth, 1);
    assert!(app.events_for("ep-unserved").is_empty());
    let _ = conn.close(200, "bye".into()).await;
    // The gateway answers epay's callbacks 503, saying why.
    let answer = reqwest::Client::new()
        .post(format!("http://{}/callbacks/epay", app.fleet.gateway_addr))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 503);
    assert_eq!(
        answer.text().await.unwrap(),
        "epay is not enabled here (epay.enabled = false)"
    );
    let _ = worker.kill().await;
    app.stop().await;
}
