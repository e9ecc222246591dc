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
    names: Names,
    /// The queues consumed: those of the enabled providers.
    providers: Vec<ProviderName>,
    tag_prefix: String,
    /// How often consuming started on this channel: a tag is never used twice.
    rounds: u32,
    tags: Vec<String>,
    streams: SelectAll<Consumer>,
}

impl CommandConsumer {
    /// A channel with a prefetch bound, not yet consuming `providers`' command queues
    /// (see [`Self::resume`]).
    pub async fn open(
        conn: &Connection,
        names: &Names,
        providers: &[ProviderName],
        prefetch: u16,
        tag_prefix: &str,
    ) -> Result<Self, lapin::Error> {
        let channel = conn.create_channel().await?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        Ok(CommandConsumer {
            channel,
            names: names.clone(),
            providers: providers.to_vec(),
            tag_prefix: tag_prefix.to_owned(),
            rounds: 0,
            tags: Vec::new(),
            streams: SelectAll::new(),
        })
    }

    /// [`Self::open`], consuming at once.
    pub async fn start(
        conn: &Connection,
        names: &Names,
        providers: &[ProviderName],
        prefetch: u16,
        tag_prefix: &str,
    ) -> Result<Self, lapin::Error> {
        let mut consumer = Self::open(conn, names, providers, prefetch, tag_prefix).await?;
        consumer.resume().await?;
        Ok(consumer)
    }

    /// Starts (again) consuming its providers' command queues on this channel; the
    /// deliveries it holds unacked stay its own.
    pub async fn resume(&mut self) -> Result<(), lapin::Error> {
        self.rounds += 1;
        for &provider in &self.providers {
            let mut tag = format!("{}-{}", self.tag_prefix, provider.as_str());
            if self.rounds > 1 {
                tag = format!("{tag}-{}", self.rounds);
            }
            let consumer = self
                .channel
                .basic_consume(
                    self.names.command_queue(provider).into(),
                    tag.clone().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            self.tags.push(tag);
            self.streams.push(consumer);
        }
        Ok(())
    }

    /// Whether deliveries may still come: consuming, or cancelled with some on the way.
    pub fn is_open(&self) -> bool {
        !self.streams.is_empty()
    }

    /// The next delivery; `None` once every consumer is cancelled or the channel died.
    pub async fn next(&mut self) -> Option<Result<Inbound, lapin::Error>> {
        Some(self.streams.next().await?.map(Inbound))
    }

    /// Stops the broker from sending more; deliveries already here still arrive, and
    /// those held unacked stay with this channel (not handed back).
    pub async fn cancel(&mut self) {
        for tag in self.tags.drain(..) {
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
    /// Deliveries handed back so far (`x-delivery-count` as the quorum queue set it on
    /// a redelivery; 0 on a first delivery, whatever its publisher wrote).
    pub delivery_count: u32,
    /// Its `traceparent` header; once the worker continued its trace, the carried
    /// trace context (with the `tracestate`, see [`crate::telemetry::trace`]).
    pub traceparent: Option<String>,
    /// Its `tracestate` header, as received.
    pub tracestate: Option<String>,
    /// The provider's id of its payment as a copy payfleet parked carries it
    /// ([`headers::PAYMENT_ID`]): a provider takes back only what it sealed itself.
    pub carried: Option<String>,
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

/// How often the broker handed this delivery back. A quorum queue writes the count
/// over the header on every redelivery and leaves a first delivery (`redelivered`
/// false) as published: any count it carries then is the publisher's, not the broker's.
fn trusted_delivery_count(redelivered: bool, header: Option<u64>) -> u32 {
    match (redelivered, header) {
        (true, Some(n)) => u32::try_from(n).unwrap_or(u32::MAX),
        _ => 0,
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
        let text = |name: &str| match headers.inner().get(name) {
            Some(AMQPValue::LongString(s)) => {
                Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
            }
            _ => None,
        };
        let (traceparent, tracestate) = (text(headers::TRACEPARENT), text(headers::TRACESTATE));
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
            delivery_count: trusted_delivery_count(
                delivery.redelivered,
                number(&headers, headers::DELIVERY_COUNT),
            ),
            traceparent,
            tracestate,
            carried: text(headers::PAYMENT_ID).filter(|id| {
                id.len() <= 128
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-/".contains(&b))
            }),
            published_at: *delivery.properties.timestamp(),
            published_at_ms: match headers.inner().get(headers::PUBLISHED_MS) {
                Some(AMQPValue::LongLongInt(ms)) if *ms > 0 => Some(*ms as u64),
                _ => delivery.properties.timestamp().map(|s| s * 1000),
            },
            headers_len: super::table_len(&headers),
            headers,
        }
    }

    /// Its headers for a fresh copy of it, published anew: everything but the broker's
    /// delivery count, which starts over.
    pub fn fresh_headers(&self) -> FieldTable {
        let mut headers = self.headers.inner().clone();
        headers.remove(headers::DELIVERY_COUNT);
        headers.into()
    }

    /// Puts the delivery in the trace `carried` (see [`crate::telemetry::trace`]): its
    /// retries and check-backs, republished with its headers, stay in it.
    pub fn continue_trace(&mut self, carried: String) {
        let (traceparent, tracestate) = crate::telemetry::trace::split(&carried);
        let mut h = self.headers.inner().clone();
        h.insert(headers::TRACEPARENT.into(), super::header_text(traceparent));
        match tracestate {
            Some(ts) => h.insert(headers::TRACESTATE.into(), super::header_text(ts)),
            None => h.remove(headers::TRACESTATE),
        };
        self.headers = h.into();
        self.tracestate = tracestate.map(str::to_owned);
        self.traceparent = Some(carried);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_copy_keeps_every_header_but_the_brokers_count() {
        let mut headers = FieldTable::default();
        headers.insert(headers::DELIVERY_COUNT.into(), AMQPValue::LongLongInt(4));
        headers.insert(headers::ATTEMPT.into(), AMQPValue::LongLongInt(2));
        let info = DeliveryInfo {
            headers,
            ..Default::default()
        };
        let fresh = info.fresh_headers();
        assert!(!fresh.contains_key(headers::DELIVERY_COUNT));
        assert_eq!(
            fresh.inner().get(headers::ATTEMPT),
            Some(&AMQPValue::LongLongInt(2))
        );
    }

    #[test]
    fn only_the_brokers_delivery_count_is_trusted() {
        assert_eq!(trusted_delivery_count(false, Some(50)), 0, "a publisher's");
        assert_eq!(trusted_delivery_count(false, None), 0);
        assert_eq!(trusted_delivery_count(true, Some(3)), 3, "the broker's");
        assert_eq!(trusted_delivery_count(true, None), 0, "a classic queue's");
        assert_eq!(trusted_delivery_count(true, Some(u64::MAX)), u32::MAX);
    }
}
