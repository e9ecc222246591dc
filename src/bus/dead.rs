//! The dead-letter queue as operators read it: message by message, never losing one.
//!
//! A pass takes as many messages as the queue held when it began (`basic.get`, not
//! auto-acked), and each one taken is either put back or removed:
//! - put back: a copy with the same body and properties is published to the
//!   dead-letter exchange and confirmed by the broker, and only then is the original
//!   acked. The copies line up behind the messages still to come, so a full pass
//!   leaves the queue in the order it found it;
//! - removed: acked, once the caller has published it elsewhere, confirmed (a replay).
//!
//! Killed midway, a pass loses nothing: an original not yet acked goes back to the
//! queue when the connection drops, and one whose copy was confirmed just before the
//! kill is there twice, with the same [`DeadLetter::id`]. A `nack` with requeue would
//! not copy anything, but each one raises the quorum queue's delivery count, which a
//! delivery limit on the queue (RabbitMQ 4 sets one by default) turns into a drop.
//! Two passes at once may each read the other's copies; a message is still held by
//! one of them at a time.

use super::publisher::value_holds_pan;
use super::{Names, PublishError, Publisher, headers};
use crate::config::AmqpNodes;
use crate::contract::card::redact;
use crate::telemetry::label::{DeadLetterReason, Label};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// One message taken from the dead-letter queue, held until it is put back or removed
/// (or the connection drops, which hands it back to the queue).
pub struct DeadLetter(Delivery);

/// An open pass over the dead-letter queue.
pub struct DeadQueue {
    conn: Connection,
    channel: Channel,
    publisher: Publisher,
    names: Names,
    /// Messages still to take in this pass.
    left: u32,
}

impl DeadQueue {
    /// Opens a pass over `<namespace>.dead` as it is now. The connection takes the
    /// broker's frame size: a message RabbitMQ dead-lettered itself may carry headers
    /// larger than payfleet's own frames, and could not be delivered on them.
    pub async fn open(nodes: &AmqpNodes, names: Names) -> Result<Self, lapin::Error> {
        let conn = super::connect_consuming(nodes, "payfleet-dead").await?;
        let channel = conn.create_channel().await?;
        let left = super::queue_depth(&channel, &names.dead()).await?;
        let publisher = Publisher::open(&conn, names.clone()).await?;
        Ok(DeadQueue {
            conn,
            channel,
            publisher,
            names,
            left,
        })
    }

    /// A publisher on this pass's connection, for what replaces a removed message.
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// The next message of the pass; `None` once every message the queue held at the
    /// start was taken (or the queue ran dry: someone else took some).
    pub async fn next(&mut self) -> Result<Option<DeadLetter>, lapin::Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let got = self
            .channel
            .basic_get(self.names.dead().into(), BasicGetOptions { no_ack: false })
            .await?;
        Ok(got.map(|m| DeadLetter(m.delivery)))
    }

    /// Puts a message back at the tail: its copy confirmed, then the original acked.
    pub async fn put_back(&self, letter: DeadLetter) -> Result<(), PublishError> {
        let d = &letter.0;
        let mut h = d
            .properties
            .headers()
            .clone()
            .unwrap_or_default()
            .inner()
            .clone();
        // The broker's count of this copy's deliveries starts over.
        h.remove(headers::DELIVERY_COUNT);
        let props = d.properties.clone().with_headers(h.into());
        self.publisher
            .confirmed(&self.names.dead(), d.routing_key.as_str(), &d.data, props)
            .await?;
        Ok(d.ack(BasicAckOptions::default()).await.map(drop)?)
    }

    /// Removes a message for good: call only once what replaces it is confirmed.
    pub async fn remove(&self, letter: DeadLetter) -> Result<(), lapin::Error> {
        letter.0.ack(BasicAckOptions::default()).await.map(drop)
    }

    pub async fn close(self) {
        self.publisher.close().await;
        super::close(&self.conn).await;
    }
}

impl DeadLetter {
    /// Its stable id: the first 16 hex digits of the SHA-256 of its body as shown
    /// ([`Self::shown_body`]: card data redacted, so the id cannot be brute-forced back
    /// to a card number). Every copy of one dead letter has it, before and after a
    /// pass; dead letters with the same body share it.
    pub fn id(&self) -> String {
        let digest = Sha256::digest(self.shown_body());
        crate::contract::hex(&digest[..8])
    }

    /// The body as it was dead-lettered (a worker's dead letters are redacted already;
    /// one RabbitMQ dead-lettered itself is whole): for replaying, never for showing.
    pub fn body(&self) -> &[u8] {
        &self.0.data
    }

    /// The body with card data redacted, whoever dead-lettered it.
    pub fn shown_body(&self) -> Cow<'_, [u8]> {
        redact(&self.0.data, &self.routing_key())
    }

    /// The routing key the command had before it was dead-lettered.
    pub fn routing_key(&self) -> String {
        self.text(headers::ROUTING_KEY)
            .unwrap_or_else(|| self.0.routing_key.as_str().to_owned())
    }

    /// Why it was dead-lettered: payfleet's reason, or what RabbitMQ says of its own.
    pub fn reason(&self) -> String {
        if let Some(reason) = self.text(headers::REASON) {
            return reason;
        }
        match self.broker_reason() {
            Some(why) => format!("dead-lettered by RabbitMQ: {why}"),
            None => "no reason given".into(),
        }
    }

    /// The class of its reason; RabbitMQ's own dead-lettering by delivery limit is
    /// the crash loop a worker would have dead-lettered. `None` when neither says.
    pub fn class(&self) -> Option<DeadLetterReason> {
        let class = self
            .text(headers::REASON_CLASS)
            .or_else(|| self.broker_reason())?;
        DeadLetterReason::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == class)
    }

    /// When it was dead-lettered (ms since the epoch): payfleet's publish time, else
    /// the AMQP timestamp. For one RabbitMQ dead-lettered, when its command was
    /// published, which is earlier.
    pub fn dead_lettered_ms(&self) -> Option<u64> {
        match self.header(headers::PUBLISHED_MS) {
            Some(AMQPValue::LongLongInt(ms)) if *ms > 0 => Some(*ms as u64),
            _ => self.0.properties.timestamp().map(|s| s * 1000),
        }
    }

    pub fn traceparent(&self) -> Option<String> {
        self.text(headers::TRACEPARENT)
    }

    pub fn tracestate(&self) -> Option<String> {
        self.text(headers::TRACESTATE)
    }

    /// Its headers as text, but any that may hold card data.
    pub fn shown_headers(&self) -> Vec<(String, String)> {
        let Some(table) = self.0.properties.headers() else {
            return Vec::new();
        };
        table
            .inner()
            .iter()
            .filter(|(name, value)| {
                !crate::contract::card::holds_pan(name.as_str()) && !value_holds_pan(value)
            })
            .map(|(name, value)| (name.to_string(), shown(value)))
            .collect()
    }

    /// Why RabbitMQ last dead-lettered it: a command that came back from a delay queue
    /// carries that queue's `expired` too, as an earlier death.
    fn broker_reason(&self) -> Option<String> {
        let Some(AMQPValue::FieldArray(deaths)) = self.header(headers::BROKER_DEATHS) else {
            return None;
        };
        let Some(AMQPValue::FieldTable(latest)) = deaths.as_slice().first() else {
            return None;
        };
        match latest.inner().get("reason")? {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            AMQPValue::ShortString(s) => Some(s.to_string()),
            _ => None,
        }
    }

    fn header(&self, name: &str) -> Option<&AMQPValue> {
        self.0.properties.headers().as_ref()?.inner().get(name)
    }

    fn text(&self, name: &str) -> Option<String> {
        match self.header(name)? {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            AMQPValue::ShortString(s) => Some(s.to_string()),
            _ => None,
        }
    }
}

/// A header value as an operator reads it.
fn shown(value: &AMQPValue) -> String {
    match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.to_string(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::FieldTable(t) => shown_table(t),
        AMQPValue::FieldArray(a) => {
            let items: Vec<String> = a.as_slice().iter().map(shown).collect();
            format!("[{}]", items.join(", "))
        }
        other => format!("{other:?}"),
    }
}

fn shown_table(t: &FieldTable) -> String {
    let items: Vec<String> = t
        .inner()
        .iter()
        .map(|(k, v)| format!("{k}: {}", shown(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::BasicProperties;
    use lapin::types::FieldArray;

    fn letter(body: &str, headers: &[(&str, AMQPValue)]) -> DeadLetter {
        let mut d = Delivery::mock(
            1,
            "t.dead".into(),
            "epay.transfer".into(),
            false,
            body.into(),
        );
        let mut table = FieldTable::default();
        for (name, value) in headers {
            table.insert((*name).into(), value.clone());
        }
        d.properties = BasicProperties::default().with_headers(table);
        DeadLetter(d)
    }

    fn death(reason: &str) -> AMQPValue {
        let mut t = FieldTable::default();
        t.insert("reason".into(), super::super::header_text(reason));
        AMQPValue::FieldTable(t)
    }

    #[test]
    fn a_workers_dead_letter_says_its_reason_class_and_routing_key() {
        let d = letter(
            "{}",
            &[
                (headers::REASON, super::super::header_text("cannot decode")),
                (
                    headers::REASON_CLASS,
                    super::super::header_text("undecodable"),
                ),
                (
                    headers::ROUTING_KEY,
                    super::super::header_text("ecommpay.payout"),
                ),
                // It came back from a delay queue once: RabbitMQ's word is not the reason.
                (
                    headers::BROKER_DEATHS,
                    AMQPValue::FieldArray(FieldArray::from(vec![death("expired")])),
                ),
            ],
        );
        assert_eq!(d.reason(), "cannot decode");
        assert_eq!(d.class(), Some(DeadLetterReason::Undecodable));
        assert_eq!(d.routing_key(), "ecommpay.payout");
    }

    #[test]
    fn rabbitmqs_own_dead_letter_is_classed_by_its_latest_death() {
        let deaths = FieldArray::from(vec![death("delivery_limit"), death("expired")]);
        let d = letter(
            "{}",
            &[(headers::BROKER_DEATHS, AMQPValue::FieldArray(deaths))],
        );
        assert_eq!(d.reason(), "dead-lettered by RabbitMQ: delivery_limit");
        assert_eq!(d.class(), Some(DeadLetterReason::DeliveryLimit));
        assert_eq!(d.routing_key(), "epay.transfer", "the delivery's own");
        assert_eq!(letter("{}", &[]).class(), None);
    }

    #[test]
    fn card_data_is_neither_shown_nor_behind_the_id() {
        let pan = "4405639704015096";
        let with = |pan: &str| {
            let body = format!(
                r#"{{"method":"p2p","details":{{"sender":{{"card":{{"pan":"{pan}"}}}}}}}}"#
            );
            letter(
                &body,
                &[("x-note", super::super::header_text(&format!("card {pan}")))],
            )
        };
        let d = with(pan);
        assert!(!String::from_utf8_lossy(&d.shown_body()).contains(pan));
        assert!(d.shown_headers().iter().all(|(name, _)| name != "x-note"));
        assert_eq!(
            d.id(),
            with("5522042705066736").id(),
            "the id hashes the redacted body"
        );
        assert_eq!(d.id().len(), 16);
        assert!(
            String::from_utf8_lossy(d.body()).contains(pan),
            "kept for a replay"
        );
    }
}
