//! The default events queue (`<ns>.events`) is bounded, dropping its oldest events, and
//! a fleet upgraded over a queue an earlier payfleet declared unbounded still starts and
//! delivers there (RabbitMQ refuses to redeclare a queue with other arguments).

mod common;

use common::{logs::captured_logs, payout, settings, spawn_app_with};
use lapin::BasicProperties;
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use payfleet::bus::{self, EventsQueueBound, Names};
use payfleet::contract::EventStatus;

#[tokio::test]
async fn the_events_queue_keeps_the_newest_events_and_never_refuses_one() {
    let s = settings("t-evq-bound");
    let names = Names::new(&s.amqp.namespace);
    let conn = bus::connect(&s.amqp.url, "test-evq-bound").await.unwrap();
    let bound = EventsQueueBound {
        max_length: 3,
        max_bytes: 1 << 20,
    };
    let shape = bus::Shape {
        delivery_limit: 5,
        delays_ms: Vec::new(),
        events_queue: Some(bound),
        group_size: 0,
    };
    bus::declare(&conn, &names, &shape).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for n in 0..5 {
        let confirm = ch
            .basic_publish(
                names.events_exchange().into(),
                "payment.accepted".into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                n.to_string().as_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        // drop-head: a full queue takes the event (a reject-publish one would nack it).
        assert!(confirm.is_ack(), "event {n} refused: {confirm:?}");
    }
    assert_eq!(
        bus::queue_depth(&ch, &names.events_queue()).await.unwrap(),
        3
    );
    let mut kept = Vec::new();
    while let Some(m) = ch
        .basic_get(
            names.events_queue().into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
    {
        kept.push(String::from_utf8(m.delivery.data.clone()).unwrap());
    }
    assert_eq!(kept, ["2", "3", "4"]);
    bus::delete_all(&ch, &names, &[]).await.unwrap();
    bus::close(&conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleet_upgraded_over_an_unbounded_events_queue_starts_and_uses_it() {
    let logs = captured_logs();
    let s = settings("t-evq-old");
    let names = Names::new(&s.amqp.namespace);
    // The queue as payfleet declared it before it was bounded.
    let conn = bus::connect(&s.amqp.url, "test-evq-old").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut quorum = FieldTable::default();
    quorum.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from(b"quorum".to_vec())),
    );
    ch.queue_declare(
        names.events_queue().into(),
        QueueDeclareOptions::durable(),
        quorum,
    )
    .await
    .unwrap();

    let app = spawn_app_with(s, 1).await;
    app.publish(&payout("evq-old", 200000, "KZT", "444567"))
        .await;
    assert_eq!(app.terminal("evq-old").await.status, EventStatus::Succeeded);
    let log = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let warning = log
        .lines()
        .find(|l| l.contains("the events queue exists with other arguments"))
        .expect("one warning names the unbounded queue");
    for step in ["rabbitmqctl set_policy", "drop-head", &names.events_queue()] {
        assert!(warning.contains(step), "{step} missing from: {warning}");
    }
    app.stop().await;
    bus::close(&conn).await;
}
