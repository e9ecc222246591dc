//! The Redis state machine's scripts, against the real Redis.

mod common;

use payfleet::contract::{Fingerprint, IdempotencyKey};
use payfleet::state::{
    Claim, ClaimMode, EventState, Meta, Outcome, RejectVerdict, Settle, State, StateStore,
    Transition,
};

async fn store() -> StateStore {
    let s = common::settings("t-state");
    payfleet::app::connect_store(&s)
        .await
        .expect("Redis must be running on 127.0.0.1:6379 (scripts/ensure-services starts it)")
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

fn fp(s: &str) -> Fingerprint {
    Fingerprint::from_stored(s.into())
}

#[tokio::test]
async fn many_concurrent_claims_give_exactly_one_owner() {
    let store = store().await;
    let k = key("race");
    let (f, meta) = (fp("a"), Meta::default());
    let claims = futures::future::join_all(
        (0..50).map(|_| store.claim(&k, &f, 30_000, "race", &meta, None)),
    )
    .await;
    let owners = claims
        .iter()
        .filter(|c| matches!(c, Ok(Claim::Claimed { .. })))
        .count();
    let busy = claims
        .iter()
        .filter(|c| matches!(c, Ok(Claim::Busy)))
        .count();
    assert_eq!((owners, busy), (1, 49));
}

#[tokio::test]
async fn a_different_body_under_the_same_key_conflicts() {
    let store = store().await;
    let k = key("conflict");
    store
        .claim(&k, &fp("a"), 30_000, "p", &Meta::default(), None)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim(&k, &fp("b"), 30_000, "p", &Meta::default(), None)
            .await
            .unwrap(),
        Claim::Conflict
    );
    assert_eq!(
        store
            .reject(&k, &fp("b"), &Meta::default(), &Outcome::default())
            .await
            .unwrap(),
        RejectVerdict::Conflict
    );
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_old_owner_is_fenced() {
    let store = store().await;
    let k = key("lease");
    let Claim::Claimed {
        lease: old, mode, ..
    } = store
        .claim(&k, &fp("a"), 50, "p", &Meta::default(), None)
        .await
        .unwrap()
    else {
        panic!("first claim owns it")
    };
    assert_eq!(mode, ClaimMode::Fresh);
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    // This delivery was allocated another id (its allocation lost on its own): the
    // record's, which the payment went out under, is the one it gets.
    let Claim::Claimed {
        lease: new,
        mode,
        attempt,
        since_last_claim,
        payment_id,
    } = store
        .claim(&k, &fp("a"), 30_000, "p-other", &Meta::default(), None)
        .await
        .unwrap()
    else {
        panic!("the lease ran out, so it can be taken over")
    };
    assert_eq!(payment_id, "p");
    // It may have reached the provider: the new owner must ask before sending.
    assert_eq!((mode, attempt), (ClaimMode::Recover, 2));
    assert!(since_last_claim >= std::time::Duration::from_millis(100));
    assert!(new.fence > old.fence);
    assert!(!store.renew(&k, &old, 30_000).await.unwrap());
    assert_eq!(
        store
            .transition(&k, &old, State::Submitted, None)
            .await
            .unwrap(),
        Transition::Fenced
    );
    assert_eq!(
        store
            .transition(&k, &new, State::Submitted, None)
            .await
            .unwrap(),
        Transition::Ok
    );
    assert_eq!(
        store
            .claim(&k, &fp("a"), 30_000, "p", &Meta::default(), None)
            .await
            .unwrap(),
        Claim::Awaiting(State::Submitted)
    );
}

/// A recovery about to send again learns whether another worker took the command
/// (fenced: leave it to that one) or Redis lost its record (nobody has it: it must come
/// back, never be dropped as another's).
#[tokio::test]
async fn a_resend_tells_a_lost_lease_from_a_lost_record() {
    let store = store().await;
    let k = key("resend-renew");
    let Claim::Claimed { lease: old, .. } = store
        .claim(&k, &fp("a"), 50, "p", &Meta::default(), None)
        .await
        .unwrap()
    else {
        panic!("first claim owns it")
    };
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    let Claim::Claimed { lease: new, .. } = store
        .claim(&k, &fp("a"), 30_000, "p", &Meta::default(), None)
        .await
        .unwrap()
    else {
        panic!("taken over")
    };
    assert_eq!(
        store.renew_to_resend(&k, &old, 30_000).await.unwrap(),
        Transition::Fenced
    );
    assert_eq!(
        store.renew_to_resend(&k, &new, 30_000).await.unwrap(),
        Transition::Ok
    );
    let mut conn = redis::Client::open("redis://127.0.0.1:6379")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(store.record_key(&k))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        store.renew_to_resend(&k, &new, 30_000).await.unwrap(),
        Transition::Missing
    );
    assert!(!store.renew(&k, &new, 30_000).await.unwrap());
}

#[tokio::test]
async fn a_provider_outcome_wins_over_a_worker_mid_call_and_applies_once() {
    let store = store().await;
    let k = key("settle");
    let Claim::Claimed { lease, .. } = store
        .claim(&k, &fp("a"), 30_000, "p", &Meta::default(), None)
        .await
        .unwrap()
    else {
        panic!()
    };
    let outcome = Outcome {
        code: Some("0".into()),
        ..Default::default()
    };
    assert!(matches!(
        store.settle(&k, State::Succeeded, &outcome).await.unwrap(),
        Some(Settle::Applied {
            previous: Some(State::Submitting),
            ..
        })
    ));
    // The worker comes back from its call: too late, nothing is overwritten.
    assert_eq!(
        store
            .transition(&k, &lease, State::Submitted, None)
            .await
            .unwrap(),
        Transition::Terminal(State::Succeeded)
    );
    // A contradicting or repeated report changes nothing.
    let again = store
        .settle(&k, State::Declined, &Outcome::default())
        .await
        .unwrap();
    assert!(matches!(
        again,
        Some(Settle::Duplicate {
            state: State::Succeeded,
            ..
        })
    ));
    assert_eq!(
        store
            .record(&k)
            .await
            .unwrap()
            .and_then(|rec| rec.outcome?.code)
            .as_deref(),
        Some("0")
    );
}

/// An operator's resolution is settled only from the states it was decided for: a
/// worker that took the payment since keeps it.
#[tokio::test]
async fn settling_from_named_states_leaves_a_payment_a_worker_took_since() {
    let store = store().await;
    let k = key("settle-from");
    store
        .claim(&k, &fp("a"), 30_000, "p", &Meta::default(), None)
        .await
        .unwrap();
    let open = [State::Submitted, State::ActionRequired, State::Unknown];
    let moved = store
        .settle_from(&k, State::Declined, &Outcome::default(), &open)
        .await
        .unwrap();
    assert!(
        matches!(
            moved,
            Some(Settle::Moved {
                state: State::Submitting,
                ..
            })
        ),
        "{moved:?}"
    );
    let rec = store.record(&k).await.unwrap().unwrap();
    assert_eq!((rec.state, rec.outcome), (State::Submitting, None));
    assert!(rec.lease_until.is_some(), "the worker keeps its lease");
    // From a state it names, it settles as any report does.
    let settled = store
        .settle_from(
            &k,
            State::Declined,
            &Outcome::default(),
            &[State::Submitting],
        )
        .await
        .unwrap();
    assert!(
        matches!(settled, Some(Settle::Applied { .. })),
        "{settled:?}"
    );
    assert!(
        store
            .settle_from(
                &key("settle-from-none"),
                State::Failed,
                &Outcome::default(),
                &open
            )
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn one_process_at_a_time_may_publish_a_terminal_event() {
    let store = store().await;
    let k = key("publish");
    store
        .claim(&k, &fp("a"), 30_000, "p", &Meta::default(), None)
        .await
        .unwrap();
    store
        .settle(&k, State::Declined, &Outcome::default())
        .await
        .unwrap();
    // Settling took the right to publish: nobody else gets it meanwhile.
    assert!(!store.claim_publish(&k, State::Declined).await.unwrap());
    store.publish_release(&k, State::Declined).await.unwrap();
    assert!(store.claim_publish(&k, State::Declined).await.unwrap());
    assert!(!store.claim_publish(&k, State::Declined).await.unwrap());
    // The first confirm gives the record's age (its time to certainty), later ones none.
    let age = store.publish_done(&k, State::Declined).await.unwrap();
    assert!(
        age.is_some_and(|a| a < std::time::Duration::from_secs(10)),
        "{age:?}"
    );
    assert_eq!(store.publish_done(&k, State::Declined).await.unwrap(), None);
    assert!(!store.claim_publish(&k, State::Declined).await.unwrap());
    let claim = store
        .claim(&k, &fp("a"), 30_000, "p", &Meta::default(), None)
        .await
        .unwrap();
    assert_eq!(
        claim,
        Claim::Terminal {
            state: State::Declined,
            event: EventState::Published
        }
    );
}

#[tokio::test]
async fn a_released_retry_claims_fresh_and_every_key_shares_one_hash_slot() {
    let store = store().await;
    let k = key("retry");
    let Claim::Claimed { lease, .. } = store
        .claim(&k, &fp("a"), 30_000, "p", &Meta::default(), None)
        .await
        .unwrap()
    else {
        panic!()
    };
    store
        .transition(&k, &lease, State::Received, None)
        .await
        .unwrap();
    let again = store
        .claim(&k, &fp("a"), 30_000, "p", &Meta::default(), None)
        .await
        .unwrap();
    assert!(matches!(
        again,
        Claim::Claimed {
            mode: ClaimMode::Fresh,
            attempt: 2,
            ..
        }
    ));
    assert!(store.record_key(&k).contains("{retry}"));
}

#[tokio::test]
async fn open_payments_are_counted_by_method() {
    use payfleet::contract::Method;
    let store = store().await;
    let meta = |method| Meta {
        method: Some(method),
        ..Meta::default()
    };
    let due = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    for (k, m) in [
        ("open-hb-1", Method::Homebank),
        ("open-hb-2", Method::Homebank),
        ("open-gp-1", Method::GooglePay),
    ] {
        store
            .claim(&key(k), &fp(k), 30_000, "p", &meta(m), None)
            .await
            .unwrap();
        store.track(&key(k), due, false).await.unwrap();
    }
    let counts = store.open_by_method(100).await.unwrap();
    assert_eq!(counts.get(&Method::Homebank), Some(&2), "{counts:?}");
    assert_eq!(counts.get(&Method::GooglePay), Some(&1), "{counts:?}");
    assert_eq!(counts.get(&Method::P2p), None, "{counts:?}");
}

/// Notes accumulate: a later note (a refused callback) never erases an earlier one
/// (`overdue: …`), the same note is not added twice, and only the last 2 KB are kept.
#[tokio::test]
async fn notes_accumulate_once_each_and_bounded() {
    let store = store().await;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let k = key(&format!("notes-{nanos:x}"));
    assert!(!store.note(&k, "overdue: x").await.unwrap(), "no record");
    store
        .claim(&k, &fp("a"), 30_000, "p", &Meta::default(), None)
        .await
        .unwrap();
    let note = |store: StateStore, k: IdempotencyKey| async move {
        store.record(&k).await.unwrap().unwrap().note.unwrap()
    };
    assert!(store.note(&k, "overdue: x").await.unwrap());
    assert!(store.note(&k, "refused a callback").await.unwrap());
    assert!(store.note(&k, "overdue: x").await.unwrap());
    assert_eq!(
        note(store.clone(), k.clone()).await,
        "overdue: x; refused a callback"
    );
    for i in 0..100 {
        store
            .note(&k, &format!("note {i:03} {}", "é".repeat(20)))
            .await
            .unwrap();
    }
    let kept = note(store.clone(), k.clone()).await;
    assert!(kept.len() <= 2048, "{}", kept.len());
    assert!(kept.ends_with(&format!("note 099 {}", "é".repeat(20))));
    assert!(!kept.contains("overdue: x"));
}
