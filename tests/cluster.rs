//! The cluster smoke test: a fleet on the 3-node RabbitMQ cluster of `scripts/cluster`,
//! whose node leading the commands queue is killed (kill -9) mid-run. Every command
//! still ends once, and nothing is paid twice.

mod common;

use common::{payout, spawn_app_with};
use payfleet::config::AmqpNodes;
use payfleet::contract::{IdempotencyKey, ProviderName};
use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `scripts/cluster ARGS`, failing the test loudly if it fails: a cluster that
/// cannot be started is a red test, never a skipped one.
fn cluster(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cluster");
    let out = Command::new(script)
        .args(args)
        .output()
        .expect("scripts/cluster runs");
    assert!(
        out.status.success(),
        "scripts/cluster {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Starts a killed node again however the test ends, so the cluster is whole for the
/// next run.
struct Restart(String);

impl Drop for Restart {
    fn drop(&mut self) {
        cluster(&["start-rabbit", &self.0]);
    }
}

fn nodes() -> AmqpNodes {
    let urls: Vec<String> = (5681..=5683)
        .map(|port| format!("amqp://guest:guest@127.0.0.1:{port}/%2f"))
        .collect();
    AmqpNodes::parse(&urls.iter().map(String::as_str).collect::<Vec<_>>()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_command_ends_once_when_the_node_leading_its_queue_dies() {
    cluster(&["up"]);
    let mut s = common::settings("t-cluster");
    s.amqp.url = nodes();
    s.amqp.quorum_group_size = 3;
    // Few in hand and slow answers: the kill lands while most payouts wait in the
    // queue and some are in the workers' hands.
    (s.amqp.prefetch, s.worker.max_in_flight) = (4, 4);
    let app = spawn_app_with(s, 2).await;
    let mut faults = app.fleet.sandbox.faults();
    faults.endpoints.entry("*".into()).or_default().slow_ms = 300;
    app.fleet.sandbox.set_faults(faults);
    let queue = app.fleet.names().command_queue(ProviderName::Ecommpay);
    let leader = cluster(&["leader", &queue]);

    let keys: Vec<String> = (0..80).map(|n| format!("cl-{n}")).collect();
    for key in &keys {
        app.publish(&payout(key, 200000, "KZT", "444567")).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.events.terminal_by_key().len() < 5 {
        assert!(Instant::now() < deadline, "no payout ended before the kill");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster(&["kill-rabbit", &leader]);
    let restart = Restart(leader.clone());
    let before = app.events.terminal_by_key().len();
    assert!(before < keys.len(), "the kill came after the run");

    let wanted: Vec<IdempotencyKey> = keys
        .iter()
        .map(|k| IdempotencyKey::parse(k).unwrap())
        .collect();
    let ended = app
        .events
        .wait_terminal(&wanted, Duration::from_secs(120))
        .await;
    assert!(
        ended,
        "not every command ended after node {leader} died: {} of {}",
        app.events.terminal_by_key().len(),
        keys.len()
    );

    let terminal = app.events.terminal_by_key();
    let executed = app.fleet.sandbox.stats().executed;
    for key in &wanted {
        // A copy of an event that was published again carries the same event_id.
        let ids: HashSet<_> = terminal[key].iter().map(|e| e.event_id).collect();
        assert_eq!(
            ids.len(),
            1,
            "{key} ended more than once: {:?}",
            terminal[key]
        );
        assert_eq!(executed.get(key.as_str()), Some(&1), "{key} executed");
    }
    // The node back first: deleting the fleet's quorum queues with a member down takes
    // RabbitMQ about 5 s a queue (35 s measured here), a time a slower machine stretches.
    drop(restart);
    app.stop().await;
}
