//! RabbitMQ: the topology of the bus contract, confirmed publishing and consuming.

pub mod canary;
mod consumer;
mod dead;
mod ladder;
mod link;
mod publisher;
mod topology;

pub use canary::{Canary, Flow};
pub use consumer::{CommandConsumer, DeliveryInfo, Inbound};
pub use dead::{DeadLetter, DeadQueue};
pub use ladder::{Ladder, Rung};
pub use link::PublisherLink;
pub use publisher::{Expiry, Marks, Parcel, PublishError, Publisher, header_text};
pub use topology::{EventsQueueBound, Names, Shape, declare, delete_all, queue_depth};

use crate::config::AmqpNodes;
use lapin::{Connection, ConnectionProperties};

/// Headers payfleet puts on the messages it moves.
pub mod headers {
    /// Which attempt of a command this delivery is (1 for the first).
    pub const ATTEMPT: &str = "x-payfleet-attempt";
    /// Why a message was dead-lettered.
    pub const REASON: &str = "x-payfleet-reason";
    /// The class of that reason (`undecodable`, `idempotency_conflict`,
    /// `delivery_limit`, `oversize`): what `payfleet dead` counts and judges by.
    pub const REASON_CLASS: &str = "x-payfleet-reason-class";
    /// Set on a command an operator replayed from the dead-letter queue.
    pub const REPLAYED: &str = "x-payfleet-replayed";
    /// Who replayed it (`payfleet dead replay --by NAME`).
    pub const REPLAYED_BY: &str = "x-payfleet-replayed-by";
    /// Set by RabbitMQ on what it dead-lettered (a quorum queue's delivery limit, a
    /// delay queue's expiry): one table per death, the latest first, each with its
    /// `reason`.
    pub const BROKER_DEATHS: &str = "x-death";
    /// The routing key a dead-lettered or delayed command had.
    pub const ROUTING_KEY: &str = "x-payfleet-routing-key";
    /// Marks a command that came back from a delay queue to check on its open payment.
    pub const CHECK_BACK: &str = "x-payfleet-check-back";
    /// Marks a command held for the provider's working hours whose `deferred` event is
    /// already out.
    pub const DEFERRED: &str = "x-payfleet-deferred";
    /// How often a command was deferred by a rate limit or throttled by the provider:
    /// those returns are not failed attempts.
    pub const DEFERRALS: &str = "x-payfleet-rate-deferrals";
    /// The ticket a rate-limit deferral handed out (µs, Redis time): the command's
    /// place in the limiter's queue when it comes back.
    pub const RATE_TICKET: &str = "x-payfleet-rate-ticket";
    /// On a copy of a command payfleet parked: the id the provider knows its payment
    /// by, as the provider carries it (epay: the invoice id sealed for the key). Should
    /// Redis lose the allocation meanwhile, a provider whose ids are allocated there
    /// takes this one back instead of allocating another.
    pub const PAYMENT_ID: &str = "x-payfleet-payment-id";
    /// W3C trace context, carried from publisher to result event.
    pub const TRACEPARENT: &str = "traceparent";
    pub const TRACESTATE: &str = "tracestate";
    /// On events: their provider, method and operation, to bind by on the
    /// `<ns>.events.match` headers exchange (not `x-`: RabbitMQ's headers exchange
    /// matches no header whose name starts with `x-`).
    pub const PROVIDER: &str = "payfleet-provider";
    pub const METHOD: &str = "payfleet-method";
    pub const OPERATION: &str = "payfleet-operation";
    /// On events: CloudEvents 1.0 attributes, as its AMQP binding names them.
    pub const CE_ID: &str = "cloudEvents_id";
    pub const CE_SOURCE: &str = "cloudEvents_source";
    pub const CE_TYPE: &str = "cloudEvents_type";
    pub const CE_SPECVERSION: &str = "cloudEvents_specversion";
    pub const CE_TIME: &str = "cloudEvents_time";
    /// Set by quorum queues: how often the message was delivered and handed back.
    pub const DELIVERY_COUNT: &str = "x-delivery-count";
    /// When payfleet published the message, in milliseconds since the epoch (the AMQP
    /// timestamp has whole seconds only): for the queue-wait metric.
    pub const PUBLISHED_MS: &str = "x-payfleet-published-ms";
}

/// Headers that start a trace: a fresh W3C traceparent, so one command can be followed
/// through logs and events.
pub fn trace_headers() -> lapin::types::FieldTable {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let mut h = lapin::types::FieldTable::default();
    h.insert(
        headers::TRACEPARENT.into(),
        header_text(&format!("00-{trace}-{span}-01")),
    );
    h
}

/// A connection with small frames ([`FRAME_MAX`] unless `amqp.url` names a size): for
/// processes that publish payfleet's own messages only.
pub async fn connect(nodes: &AmqpNodes, name: &str) -> Result<Connection, lapin::Error> {
    open(nodes, name, Some(FRAME_MAX)).await
}

/// The connection a worker consumes commands on: its frames are the broker's size
/// whatever `amqp.url` says, or a command whose headers the broker took but are larger
/// than a frame would close the connection on delivery (a content header cannot be
/// split), taking every command on it back to the queue, again and again. It costs
/// lapin's buffers: 32 frames each way, 8 MiB at RabbitMQ's default of 128 KiB.
pub async fn connect_consuming(nodes: &AmqpNodes, name: &str) -> Result<Connection, lapin::Error> {
    open(nodes, name, None).await
}

/// A connection to the first node that takes one, starting at a random node: a
/// cluster's clients spread over its nodes, and one that lost its node (every caller
/// reconnects through here, after a pause with jitter) lands on another if that one is
/// still away. The error is the last node's.
async fn open(
    nodes: &AmqpNodes,
    name: &str,
    frame_max: Option<u32>,
) -> Result<Connection, lapin::Error> {
    let urls = nodes.urls();
    let first = rand::random_range(0..urls.len());
    let mut failed = None;
    for n in 0..urls.len() {
        match open_node(&urls[(first + n) % urls.len()], name, frame_max).await {
            Ok(conn) => return Ok(conn),
            Err(e) => failed = Some(e),
        }
    }
    Err(failed.expect("AmqpNodes is never empty"))
}

async fn open_node(
    url: &str,
    name: &str,
    frame_max: Option<u32>,
) -> Result<Connection, lapin::Error> {
    // Parsed when the settings were loaded.
    let mut uri: lapin::uri::AMQPUri = url.parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "amqp.url is not an AMQP URL",
        )
    })?;
    // `None`: whatever the broker offers.
    uri.query.frame_max = frame_max.map(|default| uri.query.frame_max.unwrap_or(default));
    bounded(
        "connecting",
        Connection::connect_uri(
            uri,
            ConnectionProperties::default().with_connection_name(name.into()),
        ),
    )
    .await
}

/// The AMQP frame size payfleet asks for unless `amqp.url` names one (`?frame_max=`),
/// except on a worker's consuming connection ([`connect_consuming`]).
/// lapin keeps 32 frames of buffer each way per connection, written through: at
/// RabbitMQ's default of 128 KiB that was 8 MiB of every process's memory (dhat, see
/// BENCHMARKS.md), for messages of under 2 KB. A larger message takes more frames.
const FRAME_MAX: u32 = 8192;

/// How many bytes a header table takes on the wire: a content header must fit in one
/// frame, with the table in it.
pub(crate) fn table_len(table: &lapin::types::FieldTable) -> usize {
    lapin::types::generation::gen_field_table::<Vec<u8>>(table)(Vec::new().into())
        .map_or(usize::MAX, |written| written.write.len())
}

/// How long opening (or closing) a connection or a channel may take. A broker in the middle of a
/// restart has been seen to take a connection and never finish the handshake (the
/// chaos test caught a reconciler and a gateway waiting there for minutes, holding
/// their publisher link), and heartbeats only start once the handshake is done.
const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Closes a connection, giving up after [`OPEN_TIMEOUT`]: a broker that never answers
/// must not hold a process's shutdown.
pub async fn close(conn: &Connection) {
    let _ = bounded("closing a connection", conn.close(200, "bye".into())).await;
}

/// Runs one step of opening or closing within [`OPEN_TIMEOUT`]; past it, a timed-out IO
/// error.
pub(crate) async fn bounded<T>(
    what: &str,
    step: impl std::future::Future<Output = Result<T, lapin::Error>>,
) -> Result<T, lapin::Error> {
    tokio::time::timeout(OPEN_TIMEOUT, step)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{what}: no answer from the broker within {OPEN_TIMEOUT:?}"),
            )
            .into())
        })
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn connecting_to_a_peer_that_never_answers_the_handshake_gives_up() {
        // Takes the TCP connection and never speaks AMQP, as a restarting broker did.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let started = std::time::Instant::now();
        let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
        let url = crate::config::AmqpNodes::parse(&[&url]).unwrap();
        // Without the bound, connect would wait here for good: fail instead of hanging.
        let error = tokio::time::timeout(super::OPEN_TIMEOUT * 2, super::connect(&url, "t-silent"))
            .await
            .expect("connect gives up by itself")
            .expect_err("no handshake, no connection");
        assert!(
            error.to_string().contains("no answer from the broker"),
            "{error}"
        );
        assert!(started.elapsed() >= super::OPEN_TIMEOUT);
        held.abort();
    }
}
