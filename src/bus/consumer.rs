//! Consuming the provider command queues on one channel with a prefetch bound.

use super::{Names, headers};
use crate::contract::ProviderName;
use futures::stream::{SelectAll, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, Consumer};

pub struct CommandConsumer {
    channel: Channel,
    tags: Vec<String>,
    streams: SelectAll<Consumer>,
}

impl CommandConsumer {
    pub async fn start(
        conn: &Connection,
        names: &Names,
        prefetch: u16,
        tag_prefix: &str,
    ) -> Result<Self, lapin::Error> {
        let channel = conn.create_channel().await?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        let mut streams = SelectAll::new();
        let mut tags = Vec::new();
        for provider in ProviderName::ALL {
            let tag = format!("{tag_prefix}-{}", provider.as_str());
            let consumer = channel
                .basic_consume(
                    names.command_queue(provider).into(),
                    tag.clone().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            tags.push(tag);
            streams.push(consumer);
        }
        Ok(CommandConsumer {
            channel,
            tags,
            streams,
        })
    }

    /// The next delivery; `None` once every consumer is cancelled or the channel died.
    pub async fn next(&mut self) -> Option<Result<Inbound, lapin::Error>> {
        Some(self.streams.next().await?.map(Inbound))
    }

    /// Stops the broker from sending more; deliveries already here still arrive.
    pub async fn cancel(&self) {
        for tag in &self.tags {
            let cancel = self
                .channel
                .basic_cancel(tag.as_str().into(), BasicCancelOptions::default());
            let _ = super::bounded("cancelling a consumer", cancel).await;
        }
    }

    pub async fn close(&self) {
        let _ = super::bounded("closing a channel", self.channel.close(200, "bye".into())).await;
    }
}

/// A command delivered to this consumer: acked once finished, or handed back.
pub struct Inbound(Delivery);

impl Inbound {
    pub fn body(&self) -> &[u8] {
        &self.0.data
    }

    pub fn routing_key(&self) -> &str {
        self.0.routing_key.as_str()
    }

    pub fn info(&self) -> DeliveryInfo {
        DeliveryInfo::of(&self.0)
    }

    pub async fn ack(&self) -> Result<(), lapin::Error> {
        self.0.ack(BasicAckOptions::default()).await.map(drop)
    }

    /// Returns it to its queue, for this or another worker.
    pub async fn hand_back(&self) -> Result<(), lapin::Error> {
        let requeue = BasicNackOptions {
            requeue: true,
            ..Default::default()
        };
        self.0.nack(requeue).await.map(drop)
    }
}

/// What payfleet reads from a delivery's properties.
#[derive(Debug, Clone, Default)]
pub struct DeliveryInfo {
    pub attempt: u32,
    /// A check-back copy of a command whose payment was open.
    pub check_back: bool,
    /// Held for the provider's working hours, its `deferred` event already out.
    pub deferred_announced: bool,
    /// How often it was deferred by a rate limit or throttled by the provider: those
    /// returns are not failed attempts.
    pub deferrals: u32,
    /// The rate limiter's ticket from its last deferral (µs, Redis time).
    pub rate_ticket: Option<u64>,
    /// The broker delivered it before (a consumer died or handed it back).
    pub redelivered: bool,
    /// Deliveries handed back so far (`x-delivery-count`, set by the quorum queue).
    pub delivery_count: u32,
    pub traceparent: Option<String>,
    /// Seconds since the epoch when the publisher sent it (AMQP timestamp).
    pub published_at: Option<u64>,
    /// Milliseconds since the epoch when it was published: payfleet's header, else the
    /// AMQP timestamp (whole seconds).
    pub published_at_ms: Option<u64>,
    /// How many bytes its headers take on the wire.
    pub headers_len: usize,
    /// Kept whole, so that a command republished to a delay queue carries them all on.
    pub(super) headers: FieldTable,
}

fn number(headers: &FieldTable, name: &str) -> Option<u64> {
    match headers.inner().get(name)? {
        AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(u64::from(*n)),
        _ => None,
    }
}

impl DeliveryInfo {
    fn of(delivery: &Delivery) -> Self {
        let headers = delivery.properties.headers().clone().unwrap_or_default();
        let attempt = match headers.inner().get(headers::ATTEMPT) {
            Some(AMQPValue::LongLongInt(n)) => (*n).max(1) as u32,
            Some(AMQPValue::LongInt(n)) => (*n).max(1) as u32,
            _ => 1,
        };
        let traceparent = match headers.inner().get(headers::TRACEPARENT) {
            Some(AMQPValue::LongString(s)) => {
                Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
            }
            _ => None,
        };
        let check_back = matches!(
            headers.inner().get(headers::CHECK_BACK),
            Some(AMQPValue::Boolean(true))
        );
        DeliveryInfo {
            attempt,
            check_back,
            deferred_announced: headers.inner().contains_key(headers::DEFERRED),
            deferrals: number(&headers, headers::DEFERRALS)
                .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
            rate_ticket: number(&headers, headers::RATE_TICKET),
            redelivered: delivery.redelivered,
            delivery_count: number(&headers, headers::DELIVERY_COUNT)
                .map_or(0, |n| u32::try_from(n).unwrap_or(0)),
            traceparent,
            published_at: *delivery.properties.timestamp(),
            published_at_ms: match headers.inner().get(headers::PUBLISHED_MS) {
                Some(AMQPValue::LongLongInt(ms)) if *ms > 0 => Some(*ms as u64),
                _ => delivery.properties.timestamp().map(|s| s * 1000),
            },
            headers_len: super::table_len(&headers),
            headers,
        }
    }

    /// Puts the delivery in the trace `traceparent`: its retries and check-backs,
    /// republished with its headers, stay in it.
    pub fn continue_trace(&mut self, traceparent: String) {
        self.headers.insert(
            headers::TRACEPARENT.into(),
            super::header_text(&traceparent),
        );
        self.traceparent = Some(traceparent);
    }
}
