//! payfleet on a Redis Cluster: `scripts/cluster up` runs one on 127.0.0.1:7001-7006
//! (3 primaries, a replica each); these tests start it when it does not answer and fail
//! when it cannot be started. Every script, read and scan with keys in every slot
//! range; a payment through a whole fleet; and failovers that lose the last writes of
//! a primary on purpose (the replica is stopped, then takes over), after which nothing
//! is paid twice; and a script new to its primary while a replica is stopped. The
//! tests run one at a time: a failover would disturb the others.

mod common;

use common::cluster::{Pair, cluster_settings};
use common::{payout, spawn_app_with};
use payfleet::contract::hold::{Hold, HoldTarget};
use payfleet::contract::{EventStatus, Fingerprint, IdempotencyKey, Method};
use payfleet::ratelimit::{Answer, Global, Limit, RateKey};
use payfleet::state::{Claim, ClaimMode, Meta, Outcome, RedisConn, Settle, State, Transition};
use payfleet_sim::Faults;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

fn meta() -> Meta {
    Meta {
        method: Some(Method::Homebank),
        ..Meta::default()
    }
}

/// What `call` answers once Redis does: an outage (the client learning a new primary)
/// is waited out for 30 s, as the pipeline waits it out.
async fn answered<T, F: std::future::Future<Output = Result<T, payfleet::state::StoreError>>>(
    call: impl Fn() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match call().await {
            Ok(answer) => return answer,
            Err(e) if e.is_outage() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("Redis after the failover: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_script_index_list_and_scan_works_with_keys_in_every_slot_range() {
    let _serial = SERIAL.lock().await;
    let s = cluster_settings("t-cl-store").await;
    let store = payfleet::app::connect_store(&s).await.unwrap();
    let keys: Vec<IdempotencyKey> = (0..60).map(|i| key(&format!("cl-{i}"))).collect();
    // The records lie in the slots of all three primaries (the ranges `up` made).
    let mut conn = RedisConn::open(&s.redis).unwrap();
    let mut ranges = BTreeSet::new();
    for k in &keys {
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(store.record_key(k))
            .query_async(&mut conn)
            .await
            .unwrap();
        ranges.insert(slot / 5461);
    }
    assert_eq!(ranges.len(), 3, "the keys cover every primary's slots");

    let (fp, now) = (
        Fingerprint::from_stored("f".into()),
        std::time::SystemTime::now(),
    );
    for k in &keys {
        let Claim::Claimed { lease, mode, .. } = store
            .claim(k, &fp, 30_000, k.as_str(), &meta(), None)
            .await
            .unwrap()
        else {
            panic!("{k} is claimed");
        };
        assert_eq!(mode, ClaimMode::Fresh);
        assert!(store.renew(k, &lease, 30_000).await.unwrap());
        assert_eq!(
            store
                .transition(k, &lease, State::Submitted, None)
                .await
                .unwrap(),
            Transition::Ok
        );
        assert!(store.note(k, "checked").await.unwrap());
        store.track(k, now, false).await.unwrap();
    }
    assert_eq!(store.open_count().await.unwrap(), 60);
    assert_eq!(store.due(now, 100).await.unwrap().len(), 60);
    let by_method = store.open_by_method(1000).await.unwrap();
    assert_eq!(by_method.get(&Method::Homebank), Some(&60), "{by_method:?}");
    let mut open = 0;
    store
        .open_records(|_, r| open += usize::from(r.state == State::Submitted))
        .await
        .unwrap();
    assert_eq!(open, 60);

    // Settle half; the events' bookkeeping on each.
    for k in &keys[..30] {
        let settled = store
            .settle(k, State::Succeeded, &Outcome::default())
            .await
            .unwrap();
        assert!(
            matches!(settled, Some(Settle::Applied { .. })),
            "{settled:?}"
        );
        assert!(
            !store.claim_publish(k, State::Succeeded).await.unwrap(),
            "settling took it"
        );
        assert!(
            store
                .publish_done(k, State::Succeeded)
                .await
                .unwrap()
                .is_some()
        );
        store.untrack(k).await.unwrap();
    }
    assert_eq!(store.open_count().await.unwrap(), 30);
    let mut states = std::collections::HashMap::new();
    store
        .all_records(|k, r| {
            states.insert(k, r.state);
        })
        .await
        .unwrap();
    assert_eq!(states.len(), 60, "SCAN reached every primary");
    assert_eq!(
        states.values().filter(|s| **s == State::Succeeded).count(),
        30
    );
    let record = store.record(&keys[0]).await.unwrap().unwrap();
    assert_eq!(record.note.as_deref(), Some("checked"));

    assert!(
        store
            .lead("reconciler", "me", Duration::from_secs(5))
            .await
            .unwrap()
    );
    assert!(
        !store
            .lead("reconciler", "you", Duration::from_secs(5))
            .await
            .unwrap()
    );

    let all = store.keys().await.unwrap();
    assert!(
        all.len() > 60,
        "records, the index, the lock: {}",
        all.len()
    );
    assert_eq!(store.delete_all().await.unwrap(), all.len() as u64);
    assert!(store.keys().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_limiter_the_invoice_allocator_and_holds_work_on_a_cluster() {
    let _serial = SERIAL.lock().await;
    let s = cluster_settings("t-cl-parts").await;
    let conn = || RedisConn::open(&s.redis).unwrap();

    let global = Global::new(conn(), &s.redis.key_prefix);
    let limit = Limit {
        per_second: 10,
        burst: 2,
    };
    for account in ["a", "b", "c", "d"] {
        let rk = RateKey::new(
            payfleet::contract::ProviderName::Ecommpay,
            Some(account),
            "all",
        );
        let wait = Duration::from_millis(50);
        let answers = [
            global.reserve(&rk, limit, 1, wait, None).await.unwrap(),
            global.reserve(&rk, limit, 1, wait, None).await.unwrap(),
            global.reserve(&rk, limit, 1, wait, None).await.unwrap(),
        ];
        assert!(
            matches!(
                answers,
                [
                    Answer::Reserved(_),
                    Answer::Reserved(_),
                    Answer::Defer { .. }
                ]
            ),
            "{account}: {answers:?}"
        );
    }

    let invoices = payfleet::providers::epay::invoice::Invoices::new(
        conn(),
        &s.redis.key_prefix,
        "term-cl",
        60_000,
        secrecy::SecretString::from("secret"),
    );
    let first = invoices.allocate("k-1", None).await.unwrap().invoice_id;
    assert_eq!(
        invoices.allocate("k-1", None).await.unwrap().invoice_id,
        first
    );
    assert_ne!(
        invoices.allocate("k-2", None).await.unwrap().invoice_id,
        first
    );
    assert_eq!(invoices.find(&first).await.unwrap().unwrap().0, "k-1");

    let store = payfleet::state::StateStore::new(conn(), &s.redis.key_prefix, 60_000);
    let target = HoldTarget::parse("ecommpay/kz_main").unwrap();
    let hold = |automatic| Hold {
        target: target.clone(),
        reason: "maintenance".into(),
        by: "ops".into(),
        since: chrono::Utc::now(),
        automatic,
    };
    assert_eq!(store.set_hold(&hold(false)).await.unwrap(), None);
    assert!(
        store.set_hold(&hold(false)).await.unwrap().is_some(),
        "replaced"
    );
    assert!(store.trip_breaker(&hold(true)).await.unwrap());
    assert!(
        !store.trip_breaker(&hold(true)).await.unwrap(),
        "tripped already"
    );
    assert_eq!(store.holds().await.unwrap().len(), 2);
    assert!(
        store
            .claim_probe(&target, Duration::from_secs(5))
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_probe(&target, Duration::from_secs(5))
            .await
            .unwrap()
    );
    assert!(store.close_breaker(&target).await.unwrap());
    assert_eq!(store.release_hold(&target).await.unwrap().len(), 1);
    assert!(store.holds().await.unwrap().is_empty());
    store.delete_all().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payments_go_end_to_end_through_a_fleet_on_the_cluster() {
    let _serial = SERIAL.lock().await;
    let app = spawn_app_with(cluster_settings("t-cl-fleet").await, 2).await;
    let keys: Vec<String> = (0..6).map(|i| format!("cl-po-{i}")).collect();
    for k in &keys {
        app.publish(&payout(k, 200000, "KZT", "1")).await;
    }
    for k in &keys {
        let event = app.terminal(k).await;
        assert_eq!(event.status, EventStatus::Succeeded, "{event:?}");
        assert_eq!(app.state(k).await, Some(State::Succeeded));
    }
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.len(), 6, "{stats:?}");
    assert!(stats.executed_more_than_once.is_empty(), "{stats:?}");
    app.stop().await;
}

/// A primary that does not know a script yet (restarted, or a replica that took over:
/// script caches are not replicated) runs it while a node elsewhere is stopped: the
/// script is loaded on that primary alone, never by a SCRIPT LOAD that waits for every
/// node of the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_script_new_to_its_primary_runs_while_a_replica_is_stopped() {
    let _serial = SERIAL.lock().await;
    let s = cluster_settings("t-cl-noscript").await;
    let store = payfleet::app::connect_store(&s).await.unwrap();
    let (k, fp) = (key("noscript"), Fingerprint::from_stored("f".into()));
    let pair = Pair::of(&store.record_key(&k)).await;
    let primary = redis::Client::open(format!("redis://127.0.0.1:{}", pair.primary)).unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut primary.get_multiplexed_async_connection().await.unwrap())
        .await
        .unwrap();
    let stopped = pair.cut().await;
    // A SCRIPT LOAD sent to every node would wait for the stopped one until the call's
    // budget ran out, and fail it.
    let claim = store.claim(&k, &fp, 30_000, "p", &meta(), None).await;
    assert!(matches!(claim, Ok(Claim::Claimed { .. })), "{claim:?}");
    drop(stopped);
    store.delete_all().await.unwrap();
}

/// A transition the failover lost leaves the claim: the record is back in
/// `submitting`, and the next claim (its lease ran out) is a recovery, which asks the
/// provider for the status before sending anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failover_that_loses_a_transition_hands_the_next_claim_a_status_query_first() {
    let _serial = SERIAL.lock().await;
    let s = cluster_settings("t-cl-lost-move").await;
    let store = payfleet::app::connect_store(&s).await.unwrap();
    let (k, fp) = (key("lost-move"), Fingerprint::from_stored("f".into()));
    let Claim::Claimed { lease, .. } = store.claim(&k, &fp, 300, "p", &meta(), None).await.unwrap()
    else {
        panic!("claimed");
    };
    let pair = Pair::of(&store.record_key(&k)).await;
    pair.wait_replicated().await;
    let mut loss = pair.cut().await;
    // The provider accepted it; only the primary hears so.
    let moved = store
        .transition(&k, &lease, State::Submitted, None)
        .await
        .unwrap();
    assert_eq!(moved, Transition::Ok);
    loss.fail_over().await;

    // The client may take a while to learn the new primary: until then a call fails as
    // an outage, which the pipeline waits out, and so does this test.
    let record = answered(|| store.record(&k))
        .await
        .expect("the claim was replicated");
    assert_eq!(
        record.state,
        State::Submitting,
        "the failover lost the transition"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    // A claim whose answer timed out may still have been applied: the next one finds
    // the key busy until that short lease runs out, and is then a recovery too.
    let (deadline, meta) = (Instant::now() + Duration::from_secs(30), meta());
    let again = loop {
        match answered(|| store.claim(&k, &fp, 1_000, "p", &meta, None)).await {
            Claim::Busy if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(1_100)).await
            }
            claim => break claim,
        }
    };
    assert!(
        matches!(
            again,
            Claim::Claimed {
                mode: ClaimMode::Recover,
                attempt: 2..,
                ..
            }
        ),
        "{again:?}"
    );
    drop(loss);
}

/// A claim the failover lost entirely: the command's next delivery finds no record and
/// sends it again under the same payment id (derived from the key), which the provider
/// refuses as known; the status query settles it. Paid once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failover_that_loses_a_claim_and_its_outcome_pays_nothing_twice() {
    const PAYOUT: &str = "POST /v2/payment/cash-out-kz/homebank/payout";
    let _serial = SERIAL.lock().await;
    let mut s = cluster_settings("t-cl-lost-claim").await;
    // Only the worker's retry settles it, after the failover.
    s.reconciler.embedded = false;
    s.worker.retry_delays_ms = vec![3000];
    let app = spawn_app_with(s, 1).await;
    // The provider pays, then the answer is lost, and the callback too.
    app.fleet
        .sandbox
        .set_faults(common::answers_lost(PAYOUT, true));
    let k = "po-lost-claim";
    let store = app.store().await;
    let mut loss = Pair::of(&store.record_key(&key(k))).await.cut().await;
    app.publish(&payout(k, 200000, "KZT", "1")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.fleet.sandbox.stats().executed.is_empty() {
        assert!(Instant::now() < deadline, "the provider never paid");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the worker record what it knows and park its retry, on the primary alone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(store.record(&key(k)).await.unwrap().is_some());
    loss.fail_over().await;
    let k_ = key(k);
    assert!(
        answered(|| store.record(&k_)).await.is_none(),
        "the failover lost the claim"
    );
    app.fleet.sandbox.set_faults(Faults::default());

    let event = app.terminal(k).await;
    assert_eq!(event.status, EventStatus::Succeeded, "{event:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = app.fleet.sandbox.stats();
    assert_eq!(
        stats.executed.values().sum::<u64>(),
        1,
        "paid once: {stats:?}"
    );
    assert!(stats.executed_more_than_once.is_empty(), "{stats:?}");
    assert!(stats.duplicate_submissions_refused >= 1, "{stats:?}");
    assert!(
        stats.requests.get("POST /v2/payment/status") >= Some(&1),
        "{stats:?}"
    );
    app.stop().await;
    drop(loss);
}
