//! Provider faults and lost callbacks: nothing is paid twice, nothing stays open.

mod common;

use common::{payout, spawn_app, spawn_app_with};
use payfleet::contract::EventStatus;
use payfleet::state::State;
use payfleet_sim::Faults;
use payfleet_sim::faults::{CallbackFaults, EndpointFaults};

const PAYOUT: &str = "POST /v2/payment/cash-out-kz/homebank/payout";

fn fast_settings(label: &str) -> payfleet_tools::settings::FleetSettings {
    let mut s = common::settings(label);
    // Gate's 10 s status delay becomes 10 ms, HomeBank's 15 min basic time 0.9 s.
    s.reconciler.time_scale = 0.001;
    s.reconciler.interval_ms = 100;
    s.ecommpay.request_timeout_ms = 1000;
    s
}

fn on_payout(f: EndpointFaults) -> Faults {
    Faults {
        endpoints: [(PAYOUT.to_owned(), f)].into(),
        ..Default::default()
    }
}

async fn assert_paid_once(app: &common::TestFleet, key: &str) {
    let event = app.terminal(key).await;
    assert_eq!(event.status, EventStatus::Succeeded, "{event:?}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.get(key), Some(&1), "{stats:?}");
    assert!(stats.executed_more_than_once.is_empty());
    let terminal = app
        .events_for(key)
        .into_iter()
        .filter(|e| e.status.is_terminal())
        .count();
    assert_eq!(terminal, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_lost_after_the_provider_paid_leads_to_a_status_query_not_a_second_payout() {
    let app = spawn_app_with(fast_settings("t-err-after"), 1).await;
    app.fleet.sandbox.set_faults(on_payout(EndpointFaults {
        error_after_rate: 1.0,
        ..Default::default()
    }));
    // Callbacks lost too, so only the status query can tell the worker what happened.
    let mut faults = app.fleet.sandbox.faults();
    faults.callbacks = CallbackFaults {
        loss_rate: 1.0,
        ..Default::default()
    };
    app.fleet.sandbox.set_faults(faults);
    app.publish(&payout("po-502", 200000, "KZT", "1")).await;
    assert_paid_once(&app, "po-502").await;
    assert_eq!(app.fleet.sandbox.stats().requests.get(PAYOUT), Some(&1));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timeout_after_the_provider_paid_is_resolved_by_status() {
    let app = spawn_app_with(fast_settings("t-timeout"), 1).await;
    app.fleet.sandbox.set_faults(on_payout(EndpointFaults {
        timeout_rate: 1.0,
        timeout_ms: 2000,
        ..Default::default()
    }));
    app.publish(&payout("po-timeout", 200000, "KZT", "1")).await;
    assert_paid_once(&app, "po-timeout").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resets_and_5xx_before_processing_are_retried_and_pay_once() {
    let app = spawn_app_with(fast_settings("t-reset"), 1).await;
    app.fleet.sandbox.set_faults(on_payout(EndpointFaults {
        reset_rate: 1.0,
        ..Default::default()
    }));
    app.publish(&payout("po-reset", 200000, "KZT", "1")).await;
    app.publish(&payout("po-500", 500000, "KZT", "1")).await;
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    app.fleet.sandbox.set_faults(on_payout(EndpointFaults {
        error_rate: 1.0,
        ..Default::default()
    }));
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    app.fleet.sandbox.set_faults(Faults::default());
    assert_paid_once(&app, "po-reset").await;
    assert_paid_once(&app, "po-500").await;
    let faults = app.fleet.sandbox.stats().faults;
    assert!(faults.get("reset").copied().unwrap_or(0) >= 1, "{faults:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_callback_is_settled_by_the_reconciler() {
    let app = spawn_app_with(fast_settings("t-lost-cb"), 1).await;
    app.fleet.sandbox.set_faults(Faults {
        callbacks: CallbackFaults {
            loss_rate: 1.0,
            ..Default::default()
        },
        ..Default::default()
    });
    app.publish(&payout("po-lost-cb", 200000, "KZT", "1")).await;
    app.publish(&payout("po-lost-cb-decl", 200000, "KZT", "decline-1"))
        .await;
    assert_paid_once(&app, "po-lost-cb").await;
    let declined = app.terminal("po-lost-cb-decl").await;
    assert_eq!(declined.status, EventStatus::Declined);
    assert_eq!(declined.provider.unwrap().code, "20602");
    assert_eq!(app.fleet.sandbox.stats().callbacks.delivered, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicated_and_late_callbacks_announce_once() {
    let app = spawn_app_with(fast_settings("t-cb-dup"), 2).await;
    app.fleet.sandbox.set_faults(Faults {
        callbacks: CallbackFaults {
            duplicate_rate: 1.0,
            late_rate: 0.5,
            late_ms: 300,
            ..Default::default()
        },
        ..Default::default()
    });
    for i in 0..10 {
        app.publish(&payout(&format!("po-dup-cb-{i}"), 200000, "KZT", "1"))
            .await;
    }
    for i in 0..10 {
        assert_paid_once(&app, &format!("po-dup-cb-{i}")).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deadline_in_the_past_fails_the_command_unsent() {
    let app = spawn_app_with(fast_settings("t-deadline"), 1).await;
    let body = payout("po-late", 200000, "KZT", "1").replacen(
        '{',
        r#"{"deadline":"2020-01-01T00:00:00Z","#,
        1,
    );
    app.publish(&body).await;
    let event = app.terminal("po-late").await;
    assert_eq!(event.status, EventStatus::Failed);
    assert!(event.reason.unwrap().contains("expired"));
    assert!(app.fleet.sandbox.stats().requests.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_whose_record_redis_lost_is_still_settled() {
    let mut s = fast_settings("t-redis-lost");
    // No reconciler and no callbacks: only the check-back reminder can settle it.
    s.reconciler.embedded = false;
    let app = spawn_app_with(s, 1).await;
    app.fleet.sandbox.set_faults(Faults {
        callbacks: CallbackFaults {
            loss_rate: 1.0,
            ..Default::default()
        },
        ..Default::default()
    });
    app.publish(&payout("po-wiped", 200000, "KZT", "1")).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.state("po-wiped").await != Some(State::Submitted) {
        assert!(std::time::Instant::now() < deadline, "never accepted");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let store = app.store().await;
    let key = payfleet::contract::IdempotencyKey::parse("po-wiped").unwrap();
    let mut conn = redis::Client::open(app.fleet.settings.redis.url.first())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(store.record_key(&key))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_paid_once(&app, "po-wiped").await;
    assert!(
        app.fleet.sandbox.stats().duplicate_submissions_refused >= 1,
        "the provider refused the known id"
    );
    app.stop().await;
}

/// Issue 14, case 1: a payout Gate never registered (HTTP 500, not processed) is told
/// "not found" (3061 "Transaction not found") by the status request, in every form the
/// simulator gives it (HTTP 400 unsigned, 404, 200, signed): it is sent again with the
/// same payment id and paid once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payout_gate_never_registered_is_sent_again_whatever_form_not_found_takes() {
    use payfleet_sim::faults::Answers;
    let app = spawn_app_with(fast_settings("t-not-found"), 1).await;
    let forms = [
        ("nf-400", Answers::default()),
        (
            "nf-404",
            Answers {
                ecommpay_not_found_404_rate: 1.0,
                ..Default::default()
            },
        ),
        (
            "nf-200",
            Answers {
                ecommpay_not_found_200_rate: 1.0,
                ..Default::default()
            },
        ),
        (
            "nf-signed",
            Answers {
                ecommpay_not_found_signed_rate: 1.0,
                ..Default::default()
            },
        ),
    ];
    for (key, answers) in forms {
        let dropped = || {
            app.fleet
                .sandbox
                .stats()
                .faults
                .get("ecommpay_dropped")
                .copied()
        };
        let before = dropped().unwrap_or(0);
        app.fleet.sandbox.set_faults(Faults {
            answers: Answers {
                ecommpay_dropped_rate: 1.0,
                ..answers.clone()
            },
            ..Default::default()
        });
        app.publish(&payout(key, 200000, "KZT", "1")).await;
        // Only the first submission is lost before Gate registers it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while dropped().unwrap_or(0) == before {
            assert!(
                std::time::Instant::now() < deadline,
                "{key}: never submitted"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        app.fleet.sandbox.set_faults(Faults {
            answers,
            ..Default::default()
        });
        assert_paid_once(&app, key).await;
    }
    app.stop().await;
}

/// An `action_required` event whose publish failed (a broker restart) is published by
/// the next copy of the command, from the record: without it the customer never gets
/// the action data (found by the chaos run, where a later Redis loss then left the
/// transfer waiting for an operator).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unpublished_action_required_event_goes_out_with_the_next_copy() {
    use payfleet::contract::command::{Decoded, decode};
    use payfleet::contract::{FingerprintKey, IdempotencyKey};
    use payfleet::state::{Claim, Meta, Outcome};
    let app = spawn_app("t-action-unpublished", 1).await;
    let body = payout("act-unpub-1", 200_000, "KZT", "444567");
    let key_secret = app.fleet.settings.secrets.epay_fingerprint().unwrap();
    let Decoded::Valid(cmd) = decode(body.as_bytes(), &FingerprintKey::new(key_secret)) else {
        panic!("a valid payout");
    };
    let key = IdempotencyKey::parse("act-unpub-1").unwrap();
    let store = app.store().await;
    let meta = Meta {
        method: Some(cmd.method),
        operation: Some(cmd.operation),
        amount: Some(cmd.amount),
        ..Default::default()
    };
    let Claim::Claimed { lease, .. } = store
        .claim(&key, &cmd.fingerprint, 30_000, "act-unpub-1", &meta, None)
        .await
        .unwrap()
    else {
        panic!("a fresh claim");
    };
    let action = Outcome {
        action: Some(serde_json::json!({"url": "https://bank.example/3ds"})),
        ..Default::default()
    };
    store
        .transition(&key, &lease, State::ActionRequired, Some(&action))
        .await
        .unwrap();
    // The recorder's publish failed: it gave the right to publish back.
    store
        .publish_release(&key, State::ActionRequired)
        .await
        .unwrap();
    app.publish(&body).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let events = app.events_for("act-unpub-1");
        if let Some(e) = events
            .iter()
            .find(|e| e.status == EventStatus::ActionRequired)
        {
            assert_eq!(e.action, action.action, "{e:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no action_required event: {events:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.stop().await;
}
