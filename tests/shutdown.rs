//! A worker process stopped with SIGTERM mid-batch exits 0 and loses nothing: what it
//! could not finish goes back to the queue for the next worker.

mod common;

use common::{payout, spawn_app_with};
use payfleet::contract::IdempotencyKey;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_stops_a_worker_cleanly_and_the_next_one_finishes_the_batch() {
    let mut settings = common::settings("t-sigterm");
    // Slow provider answers, so that commands are in flight when the signal comes.
    settings.worker.shutdown_grace_ms = 200;
    let mut app = spawn_app_with(settings, 0).await;
    app.fleet.sandbox.set_faults(payfleet_sim::Faults {
        endpoints: [(
            "*".to_owned(),
            payfleet_sim::faults::EndpointFaults {
                slow_ms: 300,
                ..Default::default()
            },
        )]
        .into(),
        ..Default::default()
    });
    let s = &app.fleet.settings;
    let mut child = common::worker_process(s, "sigterm-test")
        .env("PAYFLEET__WORKER__SHUTDOWN_GRACE_MS", "200")
        .env("PAYFLEET__WORKER__RETRY_DELAYS_MS", "300,1000")
        .spawn()
        .expect("the worker starts");
    let keys: Vec<String> = (0..100).map(|i| format!("po-term-{i}")).collect();
    for k in &keys {
        app.publish(&payout(k, 200000, "KZT", "1")).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = child.id().expect("running").to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("the worker stops within its grace")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    // Another worker takes over what was handed back.
    app.fleet.add_worker().await.unwrap();
    let parsed: Vec<IdempotencyKey> = keys
        .iter()
        .map(|k| IdempotencyKey::parse(k.as_str()).unwrap())
        .collect();
    assert!(
        app.events
            .wait_terminal(&parsed, Duration::from_secs(60))
            .await,
        "every command ends"
    );
    let stats = app.fleet.sandbox.stats();
    assert!(stats.executed_more_than_once.is_empty(), "{stats:?}");
    assert_eq!(stats.executed.len(), 100);
    app.stop().await;
}
