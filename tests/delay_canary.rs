//! The delay queues' canary on the real broker: a canary sent through a delay queue
//! comes back and is collected; one whose way back is cut is kept by the delay queue
//! (at-least-once dead-lettering), as a stalled queue keeps its commands, and the
//! queue is reported stalled once the canary is late. Anything else published to the
//! canary queue is dropped.

mod common;

use lapin::types::FieldTable;
use payfleet::bus::{self, Canary, Flow, Names, Shape, canary::STALL_GRACE};
use std::time::{Duration, Instant, SystemTime};

const DELAY_MS: u64 = 200;

fn now_ms() -> u64 {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
    now.unwrap().as_millis() as u64
}

/// Waits until the canary queue holds `n` messages.
async fn canary_queue_holds(ch: &lapin::Channel, names: &Names, n: u32) {
    let started = Instant::now();
    while bus::queue_depth(ch, &names.canary()).await.unwrap() < n {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{} does not hold {n} messages (the canary through {})",
            names.canary(),
            names.delay(DELAY_MS)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_canary_comes_back_through_its_delay_queue_and_one_kept_there_stalls_it() {
    let s = common::settings("t-canary");
    let names = Names::new(&s.amqp.namespace);
    let mut shape = Shape::of(&s);
    shape.delays_ms = vec![DELAY_MS];
    let mut canary = Canary::new(&s.amqp.url, names.clone(), shape, "t-owner");
    let conn = bus::connect(&s.amqp.url, "t-canary").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    // Past its delay and the grace, from the time it was sent: late unless collected.
    let late = DELAY_MS + STALL_GRACE.as_millis() as u64 + 1;

    let sent = now_ms();
    let flows = canary.look(sent).await.unwrap();
    assert_eq!(flows, vec![(DELAY_MS, Flow::Flowing)], "sent, not late yet");
    canary_queue_holds(&ch, &names, 1).await;
    // Someone else's message under `canary.`: dropped by the look, never taken for one.
    ch.basic_publish(
        names.commands_exchange().into(),
        "canary.junk".into(),
        lapin::options::BasicPublishOptions::default(),
        br#"{"delay_ms":200}"#,
        lapin::BasicProperties::default(),
    )
    .await
    .unwrap();
    canary_queue_holds(&ch, &names, 2).await;
    // Collected at this look (and the next one sent): not late.
    let second = sent + late;
    assert_eq!(
        canary.look(second).await.unwrap(),
        vec![(DELAY_MS, Flow::Flowing)]
    );
    assert_eq!(bus::queue_depth(&ch, &names.canary()).await.unwrap(), 0);

    // The way back cut: the second canary expires into nothing the commands exchange
    // routes, and at-least-once dead-lettering keeps it in the delay queue.
    ch.queue_unbind(
        names.canary().into(),
        names.commands_exchange().into(),
        "canary.#".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(DELAY_MS * 5)).await;
    assert_eq!(
        canary.look(second + late - 2).await.unwrap(),
        vec![(DELAY_MS, Flow::Flowing)],
        "within its delay and the grace"
    );
    assert_eq!(
        canary.look(second + late).await.unwrap(),
        vec![(DELAY_MS, Flow::Stalled)],
        "late: the delay queue keeps it"
    );
    assert_eq!(bus::queue_depth(&ch, &names.canary()).await.unwrap(), 0);

    // Another reconciler leads and collects: this one's canary out no longer counts.
    canary.forget();
    let after = second + late + 1;
    assert_eq!(
        canary.look(after).await.unwrap(),
        vec![(DELAY_MS, Flow::Flowing)]
    );
    canary.close().await;
    bus::delete_all(&ch, &names, &[DELAY_MS]).await.unwrap();
    bus::close(&conn).await;
}
