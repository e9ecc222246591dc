//! RabbitMQ: the topology of the bus contract, confirmed publishing and consuming.

mod consumer;
mod link;
mod publisher;
mod topology;

pub use consumer::{CommandConsumer, DeliveryInfo};
pub use link::PublisherLink;
pub use publisher::{PublishError, Publisher, header_text};
pub use topology::{Names, declare, delete_all, queue_depth};

use lapin::{Connection, ConnectionProperties};

/// Headers payfleet puts on the messages it moves.
pub mod headers {
    /// Which attempt of a command this delivery is (1 for the first).
    pub const ATTEMPT: &str = "x-payfleet-attempt";
    /// Why a message was dead-lettered.
    pub const REASON: &str = "x-payfleet-reason";
    /// The routing key a dead-lettered or delayed command had.
    pub const ROUTING_KEY: &str = "x-payfleet-routing-key";
    /// Marks a command that came back from a delay queue to check on its open payment.
    pub const CHECK_BACK: &str = "x-payfleet-check-back";
    /// Marks a command held for the provider's working hours whose `deferred` event is
    /// already out.
    pub const DEFERRED: &str = "x-payfleet-deferred";
    /// W3C trace context, carried from publisher to result event.
    pub const TRACEPARENT: &str = "traceparent";
    /// When payfleet published the message, in milliseconds since the epoch (the AMQP
    /// timestamp has whole seconds only): for the queue-wait metric.
    /// Set by quorum queues: how often the message was delivered and handed back.
    pub const DELIVERY_COUNT: &str = "x-delivery-count";
    pub const PUBLISHED_MS: &str = "x-payfleet-published-ms";
}

pub async fn connect(url: &str, name: &str) -> Result<Connection, lapin::Error> {
    Connection::connect(
        url,
        ConnectionProperties::default().with_connection_name(name.into()),
    )
    .await
}
