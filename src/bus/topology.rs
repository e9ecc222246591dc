//! The bus topology, declared idempotently by every process at start.
//!
//! ```text
//! <ns>.commands (topic) ──<provider>.#──▶ <ns>.commands.<provider> (quorum, delivery limit)
//!                                               │ delivery limit exceeded
//!                                               ▼
//! <ns>.dead (fanout) ──────────────────▶ <ns>.dead (quorum)
//! <ns>.delay.<ms> (fanout) ──▶ <ns>.delay.<ms> (quorum, TTL) ──expired──▶ <ns>.commands, same routing key
//!
//! Every queue is a quorum queue. The delay queues dead-letter at-least-once, so what
//! expires while the broker restarts is kept. RabbitMQ has an open report of such
//! queues no longer expiring messages (rabbitmq-server#10718), so every parked command
//! is also watched by the reconciler.
//! <ns>.events (topic) ──#──▶ <ns>.events (quorum, optional)
//!        └──#──▶ <ns>.events.match (headers): consumers bind by payfleet-provider,
//!                payfleet-method, payfleet-operation (x-match all | any)
//! ```

use crate::contract::ProviderName;
use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

/// Every exchange and queue name, derived from one namespace.
#[derive(Debug, Clone)]
pub struct Names {
    pub ns: String,
}

impl Names {
    pub fn new(ns: &str) -> Self {
        Names { ns: ns.to_owned() }
    }
    pub fn commands_exchange(&self) -> String {
        format!("{}.commands", self.ns)
    }
    pub fn command_queue(&self, p: ProviderName) -> String {
        format!("{}.commands.{}", self.ns, p.as_str())
    }
    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.ns)
    }
    /// The headers exchange every event also reaches, for binding by provider and
    /// method (a topic key carries the status only).
    pub fn events_match_exchange(&self) -> String {
        format!("{}.events.match", self.ns)
    }
    pub fn events_queue(&self) -> String {
        format!("{}.events", self.ns)
    }
    pub fn dead(&self) -> String {
        format!("{}.dead", self.ns)
    }
    pub fn delay(&self, ms: u64) -> String {
        format!("{}.delay.{ms}ms", self.ns)
    }
}

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

/// Declares everything; safe to run from every process at every start.
pub async fn declare(
    ch: &Channel,
    names: &Names,
    delivery_limit: u32,
    delays_ms: &[u64],
    events_queue: bool,
) -> Result<(), lapin::Error> {
    let quorum = || ("x-queue-type", text("quorum"));
    for (name, kind) in [
        (names.commands_exchange(), ExchangeKind::Topic),
        (names.events_exchange(), ExchangeKind::Topic),
        (names.events_match_exchange(), ExchangeKind::Headers),
        (names.dead(), ExchangeKind::Fanout),
    ] {
        ch.exchange_declare(name.into(), kind, durable_exchange(), FieldTable::default())
            .await?;
    }
    ch.exchange_bind(
        names.events_match_exchange().into(),
        names.events_exchange().into(),
        "#".into(),
        lapin::options::ExchangeBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        names.dead().into(),
        QueueDeclareOptions::durable(),
        args(&[quorum()]),
    )
    .await?;
    ch.queue_bind(
        names.dead().into(),
        names.dead().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    for provider in ProviderName::ALL {
        let queue = names.command_queue(provider);
        ch.queue_declare(
            queue.clone().into(),
            QueueDeclareOptions::durable(),
            args(&[
                quorum(),
                (
                    "x-delivery-limit",
                    AMQPValue::LongLongInt(delivery_limit.into()),
                ),
                ("x-dead-letter-exchange", text(&names.dead())),
            ]),
        )
        .await?;
        ch.queue_bind(
            queue.into(),
            names.commands_exchange().into(),
            format!("{}.#", provider.as_str()).into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    for &ms in delays_ms {
        let name = names.delay(ms);
        ch.exchange_declare(
            name.clone().into(),
            ExchangeKind::Fanout,
            durable_exchange(),
            FieldTable::default(),
        )
        .await?;
        ch.queue_declare(
            name.clone().into(),
            QueueDeclareOptions::durable(),
            args(&[
                quorum(),
                ("x-message-ttl", AMQPValue::LongLongInt(ms as i64)),
                ("x-dead-letter-exchange", text(&names.commands_exchange())),
                // Kept until the commands queue confirmed it: measured here, classic
                // delay queues lost every message that expired across a broker
                // restart, and at-most-once quorum ones most of those expiring while
                // it shut down; at-least-once lost none.
                ("x-dead-letter-strategy", text("at-least-once")),
                ("x-overflow", text("reject-publish")),
            ]),
        )
        .await?;
        ch.queue_bind(
            name.clone().into(),
            name.into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    if events_queue {
        ch.queue_declare(
            names.events_queue().into(),
            QueueDeclareOptions::durable(),
            args(&[quorum()]),
        )
        .await?;
        ch.queue_bind(
            names.events_queue().into(),
            names.events_exchange().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    Ok(())
}

/// Exact message count of a queue, by passive declare (the management API lags).
pub async fn queue_depth(ch: &Channel, queue: &str) -> Result<u32, lapin::Error> {
    let q = ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::default().passive(),
            FieldTable::default(),
        )
        .await?;
    Ok(q.message_count())
}

/// Removes a namespace's exchanges and queues (tests and demos clean up after themselves).
pub async fn delete_all(
    ch: &Channel,
    names: &Names,
    delays_ms: &[u64],
) -> Result<(), lapin::Error> {
    let mut queues: Vec<String> = ProviderName::ALL
        .iter()
        .map(|p| names.command_queue(*p))
        .collect();
    queues.extend([names.dead(), names.events_queue()]);
    queues.extend(delays_ms.iter().map(|ms| names.delay(*ms)));
    for q in queues {
        ch.queue_delete(q.into(), QueueDeleteOptions::default())
            .await?;
    }
    let mut exchanges = vec![
        names.commands_exchange(),
        names.events_exchange(),
        names.events_match_exchange(),
        names.dead(),
    ];
    exchanges.extend(delays_ms.iter().map(|ms| names.delay(*ms)));
    for e in exchanges {
        ch.exchange_delete(e.into(), ExchangeDeleteOptions::default())
            .await?;
    }
    Ok(())
}
