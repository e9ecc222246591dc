//! The bus topology, declared idempotently by every process at start.
//!
//! ```text
//! <ns>.commands (topic) ──<provider>.#──▶ <ns>.commands.<provider> (quorum, delivery limit)
//!                                               │ delivery limit exceeded
//!                                               ▼
//! <ns>.dead (fanout) ──────────────────▶ <ns>.dead (quorum)
//! <ns>.delay.<ms> (fanout) ──▶ <ns>.delay.<ms> (quorum, TTL) ──expired──▶ <ns>.commands, same routing key
//! <ns>.commands ──canary.#──▶ <ns>.canary (quorum, 100 at most: drop-head)
//!
//! Every queue is a quorum queue. The delay queues dead-letter at-least-once, so what
//! expires while the broker restarts is kept. RabbitMQ has an open report of such
//! queues no longer expiring messages (rabbitmq-server#10718), so every parked command
//! is also watched by the reconciler, and a canary goes through every delay queue.
//! <ns>.events (topic) ──#──▶ <ns>.events (quorum, optional, bounded: drop-head)
//!        └──#──▶ <ns>.events.match (headers): consumers bind by payfleet-provider,
//!                payfleet-method, payfleet-operation (x-match all | any)
//! ```

use crate::contract::ProviderName;
use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Connection, ExchangeKind};

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
    /// Where the delay queues' canaries come back ([`super::canary`]).
    pub fn canary(&self) -> String {
        format!("{}.canary", self.ns)
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

/// The bound of the default events queue (`amqp.events_queue_max_length` and
/// `_max_bytes`). Past either, the broker drops the oldest event (`drop-head`): never
/// `reject-publish`, which would nack the workers' confirmed event publishes and stall
/// payments whenever nobody reads this queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsQueueBound {
    pub max_length: u64,
    pub max_bytes: u64,
}

impl EventsQueueBound {
    fn arguments(self) -> [(&'static str, AMQPValue); 3] {
        let long = |n: u64| AMQPValue::LongLongInt(i64::try_from(n).unwrap_or(i64::MAX));
        [
            ("x-max-length", long(self.max_length)),
            ("x-max-length-bytes", long(self.max_bytes)),
            ("x-overflow", text("drop-head")),
        ]
    }
}

/// What the topology's queues are declared with, from the settings.
#[derive(Debug, Clone)]
pub struct Shape {
    pub delivery_limit: u32,
    pub delays_ms: Vec<u64>,
    /// Declare `<ns>.events`, bound to every event, with this bound.
    pub events_queue: Option<EventsQueueBound>,
    /// Replicas of each quorum queue when it is created (0: the broker's default).
    pub group_size: u16,
}

impl Shape {
    pub fn of(s: &crate::config::Settings) -> Self {
        let bound = EventsQueueBound {
            max_length: s.amqp.events_queue_max_length,
            max_bytes: s.amqp.events_queue_max_bytes,
        };
        Shape {
            delivery_limit: s.amqp.delivery_limit,
            delays_ms: s.worker.retry_delays_ms.clone(),
            events_queue: s.amqp.declare_events_queue.then_some(bound),
            group_size: s.amqp.quorum_group_size,
        }
    }
}

/// Declares everything on a channel of its own; safe to run from every process at
/// every start.
pub async fn declare(conn: &Connection, names: &Names, shape: &Shape) -> Result<(), lapin::Error> {
    let ch = conn.create_channel().await?;
    declare_on(conn, &ch, names, shape).await?;
    let ch = match shape.events_queue {
        Some(bound) => declare_events_queue(conn, ch, names, bound, shape.group_size).await?,
        None => ch,
    };
    let _ = super::bounded("closing a channel", ch.close(200, "declared".into())).await;
    Ok(())
}

async fn declare_on(
    conn: &Connection,
    ch: &Channel,
    names: &Names,
    shape: &Shape,
) -> Result<(), lapin::Error> {
    let quorum = || ("x-queue-type", text("quorum"));
    let queue = |name: String, args| quorum_queue(conn, ch, name, args, shape.group_size);
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
    queue(names.dead(), args(&[quorum()])).await?;
    ch.queue_bind(
        names.dead().into(),
        names.dead().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    for provider in ProviderName::ALL {
        let name = names.command_queue(provider);
        let limit = AMQPValue::LongLongInt(shape.delivery_limit.into());
        queue(
            name.clone(),
            args(&[
                quorum(),
                ("x-delivery-limit", limit),
                ("x-dead-letter-exchange", text(&names.dead())),
            ]),
        )
        .await?;
        ch.queue_bind(
            name.into(),
            names.commands_exchange().into(),
            format!("{}.#", provider.as_str()).into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    // Bounded: canaries nobody collects (no reconciler leads) must not pile up.
    let canaries = [
        quorum(),
        ("x-max-length", AMQPValue::LongLongInt(100)),
        ("x-overflow", text("drop-head")),
    ];
    queue(names.canary(), args(&canaries)).await?;
    ch.queue_bind(
        names.canary().into(),
        names.commands_exchange().into(),
        format!("{}.#", super::canary::ROUTING_PREFIX).into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    for &ms in &shape.delays_ms {
        let name = names.delay(ms);
        ch.exchange_declare(
            name.clone().into(),
            ExchangeKind::Fanout,
            durable_exchange(),
            FieldTable::default(),
        )
        .await?;
        queue(
            name.clone(),
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
    Ok(())
}

/// Declares and binds `<ns>.events` with `bound`. A queue declared before (without the
/// bound, or with another) makes the broker refuse the declaration and close the
/// channel (PRECONDITION_FAILED): the queue is kept as it is, on a new channel, and a
/// warning says how to bound it. Returns the channel still open.
async fn declare_events_queue(
    conn: &Connection,
    ch: Channel,
    names: &Names,
    bound: EventsQueueBound,
    group_size: u16,
) -> Result<Channel, lapin::Error> {
    let queue = names.events_queue();
    let mut arguments = vec![("x-queue-type", text("quorum"))];
    arguments.extend(bound.arguments());
    let declared = quorum_queue(conn, &ch, queue.clone(), args(&arguments), group_size).await;
    let ch = match declared {
        Ok(_) => ch,
        Err(e) if refused_as_different(&e) => {
            tracing::warn!(
                queue,
                max_length = bound.max_length,
                max_bytes = bound.max_bytes,
                "the events queue exists with other arguments (declared before it was \
                 bounded?): it is used as it is, unbounded. To bound it, either apply a \
                 policy (no restart, nothing lost): rabbitmqctl set_policy --apply-to \
                 queues payfleet-events-bound '^{queue}$' \
                 '{{\"max-length\":{},\"max-length-bytes\":{},\"overflow\":\"drop-head\"}}'; \
                 or, once its consumers have drained it, delete it (rabbitmqctl \
                 delete_queue {queue}) and restart one worker, which declares it bounded",
                bound.max_length,
                bound.max_bytes,
            );
            conn.create_channel().await?
        }
        Err(e) => return Err(e),
    };
    ch.queue_bind(
        queue.into(),
        names.events_exchange().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    Ok(ch)
}

/// Declares a quorum queue, asking for `group_size` replicas if it creates it. RabbitMQ
/// compares that argument on every later declaration like the others, though it cannot
/// change (seen on 3.10: PRECONDITION_FAILED whether it was given before and not now, or
/// the other way round), so with a group size configured a queue that already exists
/// is used as it is; its members change with `rabbitmq-queues grow|shrink`.
async fn quorum_queue(
    conn: &Connection,
    ch: &Channel,
    name: String,
    mut args: FieldTable,
    group_size: u16,
) -> Result<(), lapin::Error> {
    if group_size > 0 {
        if exists(conn, &name).await? {
            return Ok(());
        }
        let size = AMQPValue::LongLongInt(group_size.into());
        args.insert("x-quorum-initial-group-size".into(), size);
    }
    ch.queue_declare(name.into(), QueueDeclareOptions::durable(), args)
        .await
        .map(drop)
}

/// Whether a queue exists, asked on a channel of its own: the broker closes the channel
/// that asked about a queue it does not have.
async fn exists(conn: &Connection, queue: &str) -> Result<bool, lapin::Error> {
    let ch = conn.create_channel().await?;
    let found = queue_depth(&ch, queue).await.is_ok();
    if found {
        let _ = super::bounded("closing a channel", ch.close(200, "asked".into())).await;
    }
    Ok(found)
}

/// The broker's answer to a declaration that differs from the queue's (406).
fn refused_as_different(e: &lapin::Error) -> bool {
    const PRECONDITION_FAILED: u16 = 406;
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(amqp) if amqp.get_id() == PRECONDITION_FAILED)
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
    queues.extend([names.dead(), names.events_queue(), names.canary()]);
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
