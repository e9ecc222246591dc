//! Events a consumer can route: every event carries its provider, method and operation
//! as headers and reaches `<ns>.events.match` (a headers exchange) besides the topic
//! exchange's `payment.<status>` keys, and carries the CloudEvents 1.0 attributes as
//! AMQP application properties (`cloudEvents_*`).

mod common;

use common::{payout, spawn_app};
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use payfleet::bus::headers;
use payfleet::contract::{Event, EventStatus};
use serde_json::json;
use std::time::Duration;

fn text(h: &FieldTable, name: &str) -> Option<String> {
    match h.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_binds_by_provider_and_method_and_reads_cloudevents_attributes() {
    let app = spawn_app("t-ev-match", 1).await;
    let names = app.fleet.names();
    let conn = payfleet::bus::connect(&app.fleet.settings.amqp.url, "test-ev-match")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let queue = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut only = FieldTable::default();
    for (k, v) in [
        ("x-match", "all"),
        (headers::PROVIDER, "ecommpay"),
        (headers::METHOD, "homebank"),
    ] {
        only.insert(k.into(), payfleet::bus::header_text(v));
    }
    ch.queue_bind(
        queue.name().clone(),
        names.events_match_exchange().into(),
        "".into(),
        QueueBindOptions::default(),
        only,
    )
    .await
    .unwrap();
    let mut consumer = ch
        .basic_consume(
            queue.name().clone(),
            "test-ev-match".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    app.publish(&payout("ev-homebank", 200000, "KZT", "1"))
        .await;
    // A P2P transfer (epay) without a receiver: rejected, its method still named.
    let p2p = json!({
        "version": 1, "idempotency_key": "ev-p2p", "method": "p2p", "operation": "transfer",
        "amount": {"minor": 1000, "currency": "KZT"},
        "details": {"description": "TEST p2p"}
    });
    app.publish(&p2p.to_string()).await;
    assert_eq!(app.terminal("ev-p2p").await.status, EventStatus::Rejected);
    assert_eq!(
        app.terminal("ev-homebank").await.status,
        EventStatus::Succeeded
    );

    let mut got = Vec::new();
    while let Ok(Some(Ok(d))) = tokio::time::timeout(Duration::from_secs(2), consumer.next()).await
    {
        let event: Event = serde_json::from_slice(&d.data).unwrap();
        let h = d.properties.headers().clone().unwrap_or_default();
        assert_eq!(text(&h, headers::CE_ID), Some(event.event_id.to_string()));
        assert_eq!(
            text(&h, headers::CE_TYPE),
            Some(format!("payfleet.payment.{}", event.status.as_str()))
        );
        assert_eq!(text(&h, headers::CE_SPECVERSION).as_deref(), Some("1.0"));
        assert_eq!(
            text(&h, headers::CE_SOURCE),
            Some(format!("payfleet/{}", names.ns))
        );
        let time = text(&h, headers::CE_TIME).unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(&time).is_ok(),
            "{time}"
        );
        assert_eq!(
            text(&h, headers::OPERATION).as_deref(),
            Some("payout"),
            "{h:?}"
        );
        d.ack(BasicAckOptions::default()).await.unwrap();
        got.push((event.idempotency_key.as_str().to_owned(), event.status));
    }
    assert!(
        got.iter().all(|(k, _)| k == "ev-homebank"),
        "only HomeBank's events: {got:?}"
    );
    assert!(
        got.contains(&("ev-homebank".into(), EventStatus::Succeeded)),
        "{got:?}"
    );
    let _ = conn.close(200, "bye".into()).await;
    app.stop().await;
}
