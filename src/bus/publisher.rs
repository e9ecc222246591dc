//! Publishing with confirms: a publish succeeds only when the broker has taken
//! responsibility for the message. Mandatory publishes that come back unroutable fail.

use super::{DeliveryInfo, Names, Rung, headers};
use crate::contract::{Event, card::holds_pan, operator::OperatorEvent};
use crate::telemetry::label::{DeadLetterReason, Label};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("broker: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("unroutable: no queue is bound to {exchange:?} for {routing_key:?}")]
    Unroutable {
        exchange: String,
        routing_key: String,
    },
    #[error("the broker refused the message (nack)")]
    Nacked,
    #[error("no confirm from the broker within {0:?}: the channel was closed")]
    NoConfirm(std::time::Duration),
    #[error(
        "headers of {0} bytes do not fit in a frame: not sent, as the broker would close the connection"
    )]
    HeadersTooLarge(usize),
}

/// What a content header holds besides the headers table (the properties payfleet sets,
/// the frame's own bytes) and the headers payfleet adds to what a command came with
/// (reason, routing key, marks), with room to spare: a command's headers are carried on
/// if they fit in a frame with this much left over.
const HEADROOM: usize = 2048;

/// How long a publish waits for the broker's confirm. RabbitMQ has had bugs that lost
/// confirms (rabbitmq-server#6115, in 3.10). Past this the message counts as not
/// published (its sender retries: at least once) and the channel is closed, so that the
/// process opens a new one rather than wait on it again.
const CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One confirm-mode channel, shared by every task of a process (lapin channels are
/// cheap handles; confirms are matched per message).
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
    names: Names,
    /// The connection's negotiated frame size.
    frame_max: usize,
}

pub fn header_text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

impl Publisher {
    pub async fn open(conn: &Connection, names: Names) -> Result<Self, lapin::Error> {
        let channel = super::bounded("opening a confirm channel", async {
            let channel = conn.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            Ok(channel)
        })
        .await?;
        let frame_max = conn.configuration().frame_max() as usize;
        Ok(Publisher {
            channel,
            names,
            frame_max,
        })
    }

    /// How many bytes of headers a command may come with for this publisher to carry
    /// them on (to a delay queue, or the dead-letter queue).
    pub fn header_room(&self) -> usize {
        self.frame_max.saturating_sub(HEADROOM)
    }

    pub fn is_connected(&self) -> bool {
        self.channel.status().connected()
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    /// Publishes a persistent JSON message and waits for the broker's confirm.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        headers: FieldTable,
        message_id: Option<&str>,
    ) -> Result<(), PublishError> {
        self.publish_with(exchange, routing_key, body, headers, message_id, None)
            .await
    }

    async fn publish_with(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        mut headers: FieldTable,
        message_id: Option<&str>,
        expiration_ms: Option<u64>,
    ) -> Result<(), PublishError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        headers.insert(
            headers::PUBLISHED_MS.into(),
            AMQPValue::LongLongInt(now.as_millis() as i64),
        );
        // A content header larger than a frame makes the broker close the connection.
        let len = super::table_len(&headers);
        if len > self.frame_max.saturating_sub(HEADROOM / 2) {
            return Err(PublishError::HeadersTooLarge(len));
        }
        let mut props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_timestamp(now.as_secs())
            .with_headers(headers);
        if let Some(id) = message_id {
            props = props.with_message_id(id.into());
        }
        if let Some(ms) = expiration_ms {
            props = props.with_expiration(ms.to_string().into());
        }
        self.confirmed(exchange, routing_key, body, props).await
    }

    /// Publishes a message with exactly these properties and waits for the confirm.
    pub(super) async fn confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<(), PublishError> {
        // Boxed: lapin's publish future is the largest part of every task that publishes,
        // and a task's future is as large as its largest branch (1,000 tasks in flight).
        let confirm = Box::pin(self.channel.basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            props,
        ))
        .await?;
        let confirm = match tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await {
            Ok(confirm) => confirm?,
            Err(_) => {
                let _ = self.channel.close(200, "no confirm".into()).await;
                return Err(PublishError::NoConfirm(CONFIRM_TIMEOUT));
            }
        };
        if confirm.is_nack() {
            // RabbitMQ 3.10.8 kept nacking this channel 90 s after its queue's leader died.
            let _ = self.channel.close(200, "nacked".into()).await;
            return Err(PublishError::Nacked);
        }
        if confirm.take_message().is_some() {
            return Err(PublishError::Unroutable {
                exchange: exchange.to_owned(),
                routing_key: routing_key.to_owned(),
            });
        }
        Ok(())
    }

    /// Publishes a command onto the commands exchange.
    pub async fn publish_command(
        &self,
        routing_key: &str,
        body: &[u8],
        headers: FieldTable,
    ) -> Result<(), PublishError> {
        self.publish(
            &self.names.commands_exchange(),
            routing_key,
            body,
            headers,
            None,
        )
        .await
    }

    pub async fn publish_event(
        &self,
        event: &Event,
        traceparent: Option<&str>,
    ) -> Result<(), PublishError> {
        let body = serde_json::to_vec(event).expect("events serialise");
        let mut h = self.cloud_event(
            &event.event_id,
            &format!("payment.{}", event.status.as_str()),
            event.occurred_at,
        );
        // Every event carries a child of its command's trace (or starts one), and the
        // command's tracestate unchanged.
        let child = crate::telemetry::trace::child_of(traceparent);
        let (tp, ts) = crate::telemetry::trace::split(&child);
        h.insert(headers::TRACEPARENT.into(), header_text(tp));
        if let Some(ts) = ts {
            h.insert(headers::TRACESTATE.into(), header_text(ts));
        }
        if let Some(m) = event.method {
            h.insert(headers::PROVIDER.into(), header_text(m.provider().as_str()));
            h.insert(headers::METHOD.into(), header_text(m.as_str()));
        }
        if let Some(o) = event.operation {
            h.insert(headers::OPERATION.into(), header_text(o.as_str()));
        }
        self.publish(
            &self.names.events_exchange(),
            &event.status.routing_key(),
            &body,
            h,
            Some(&event.event_id.to_string()),
        )
        .await
    }

    /// The CloudEvents 1.0 attributes of an event (AMQP binding: `cloudEvents_*`
    /// application properties): its id, `payfleet/<namespace>` as the source, and
    /// `payfleet.<routing key>` as the type. The body stays payfleet's own JSON.
    fn cloud_event(
        &self,
        id: &uuid::Uuid,
        routing_key: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> FieldTable {
        let mut h = FieldTable::default();
        let time = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for (name, value) in [
            (headers::CE_ID, id.to_string()),
            (headers::CE_SOURCE, format!("payfleet/{}", self.names.ns)),
            (headers::CE_TYPE, format!("payfleet.{routing_key}")),
            (headers::CE_SPECVERSION, "1.0".to_owned()),
            (headers::CE_TIME, time),
        ] {
            h.insert(name.into(), header_text(&value));
        }
        h
    }

    /// Publishes an operator's action as `operator.<action>`.
    pub async fn publish_operator_event(&self, event: &OperatorEvent) -> Result<(), PublishError> {
        let body = serde_json::to_vec(event).expect("operator events serialise");
        let h = self.cloud_event(&event.event_id, &event.routing_key(), event.occurred_at);
        self.publish(
            &self.names.events_exchange(),
            &event.routing_key(),
            &body,
            h,
            Some(&event.event_id.to_string()),
        )
        .await
    }

    /// Parks a command in a delay queue; it comes back to the commands exchange with
    /// the same routing key when its time is up.
    pub async fn park(&self, parcel: Parcel<'_>) -> Result<(), PublishError> {
        let rung = parcel.rung.ms();
        let mut h = parcel.marks.on(parcel.from);
        h.insert(
            headers::ATTEMPT.into(),
            AMQPValue::LongLongInt(parcel.attempt.into()),
        );
        if let Some(id) = parcel.carried {
            h.insert(headers::PAYMENT_ID.into(), header_text(id));
        }
        self.publish_with(
            &self.names.delay(rung),
            parcel.routing_key,
            parcel.body,
            h,
            None,
            Some(parcel.expiry.ms(rung)),
        )
        .await
    }

    /// Sends what no worker can process to the dead-letter queue, with the reason, its
    /// class and the headers it came with: those that may be card data (a value that
    /// looks like a PAN) left out, and all but the trace left out if they would not fit
    /// in a frame.
    pub async fn dead_letter(
        &self,
        routing_key: &str,
        body: &[u8],
        from: &DeliveryInfo,
        class: DeadLetterReason,
        reason: &str,
    ) -> Result<(), PublishError> {
        let mut h = dead_letter_headers(from, self.header_room());
        h.insert(headers::REASON.into(), header_text(reason));
        h.insert(headers::REASON_CLASS.into(), header_text(class.as_str()));
        h.insert(headers::ROUTING_KEY.into(), header_text(routing_key));
        self.publish(&self.names.dead(), routing_key, body, h, None)
            .await
    }

    /// Waits for outstanding confirms, then closes the channel; both bounded, so that a
    /// confirm that never comes cannot hold a shutdown for good.
    pub async fn close(&self) {
        let _ = tokio::time::timeout(CONFIRM_TIMEOUT, self.channel.wait_for_confirms()).await;
        let _ = super::bounded("closing a channel", self.channel.close(200, "bye".into())).await;
    }
}

/// The headers a dead letter keeps of those `from` came with (see
/// [`Publisher::dead_letter`]).
fn dead_letter_headers(from: &DeliveryInfo, room: usize) -> FieldTable {
    let fits = from.headers_len <= room;
    let mut h = FieldTable::default();
    for (name, value) in from.headers.inner() {
        let keep = if fits {
            !holds_pan(name.as_str()) && !value_holds_pan(value)
        } else {
            name.as_str() == headers::TRACEPARENT
        };
        if keep {
            h.insert(name.clone(), value.clone());
        }
    }
    h
}

/// Whether a header value holds something that looks like a card number.
pub(super) fn value_holds_pan(value: &AMQPValue) -> bool {
    match value {
        AMQPValue::LongString(s) => holds_pan(&String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::ShortString(s) => holds_pan(s.as_str()),
        AMQPValue::ByteArray(b) => holds_pan(&String::from_utf8_lossy(b.as_slice())),
        AMQPValue::FieldTable(t) => t
            .inner()
            .iter()
            .any(|(k, v)| holds_pan(k.as_str()) || value_holds_pan(v)),
        AMQPValue::FieldArray(a) => a.as_slice().iter().any(value_holds_pan),
        AMQPValue::LongLongInt(n) => holds_pan(&n.to_string()),
        AMQPValue::LongUInt(n) => holds_pan(&n.to_string()),
        _ => false,
    }
}

/// A command put in a delay queue, continuing the delivery `from` (whose headers it
/// keeps).
pub struct Parcel<'a> {
    pub routing_key: &'a str,
    pub body: &'a [u8],
    pub from: &'a DeliveryInfo,
    pub rung: Rung,
    pub expiry: Expiry,
    /// The attempt it comes back as.
    pub attempt: u32,
    pub marks: Marks,
    /// The provider's id of its payment as the provider carries it, when it does
    /// ([`headers::PAYMENT_ID`]).
    pub carried: Option<&'a str>,
}

/// When a parked command expires, within its rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// A little early at random (up to a fifth), so the retries of a burst do not come
    /// back as a burst; a queue expires messages only at its head, so the spread stays
    /// that small.
    Early,
    /// Exactly after this many ms.
    Exact(u64),
    /// After `from` ms and up to `spread` ms more at random.
    Spread { from: u64, spread: u64 },
}

impl Expiry {
    /// The message's expiration in a delay queue of `rung` ms (never past it).
    fn ms(self, rung: u64) -> u64 {
        let ms = match self {
            Expiry::Early => rung - rand::random_range(0..=rung / 5),
            Expiry::Exact(ms) => ms,
            Expiry::Spread { from, spread } => from + rand::random_range(0..=spread),
        };
        ms.min(rung)
    }
}

/// What a parked command says about itself when it comes back (see [`headers`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    /// It comes back to check on its open payment ([`headers::CHECK_BACK`]).
    pub check_back: bool,
    /// Its `deferred` event is out ([`headers::DEFERRED`]).
    pub deferred_announced: bool,
    /// One more rate-limit deferral on its count ([`headers::DEFERRALS`]).
    pub rate_deferral: bool,
    /// The limiter's new ticket ([`headers::RATE_TICKET`]); without one, an old one
    /// stays: Redis ignores it once it is stale.
    pub rate_ticket: Option<u64>,
}

impl Marks {
    fn on(self, from: &DeliveryInfo) -> FieldTable {
        let mut h = from.headers.clone();
        if self.check_back {
            h.insert(headers::CHECK_BACK.into(), AMQPValue::Boolean(true));
        }
        if self.deferred_announced {
            h.insert(headers::DEFERRED.into(), AMQPValue::Boolean(true));
        }
        if self.rate_deferral {
            let count = i64::from(from.deferrals) + 1;
            h.insert(headers::DEFERRALS.into(), AMQPValue::LongLongInt(count));
        }
        if let Some(t) = self.rate_ticket {
            h.insert(
                headers::RATE_TICKET.into(),
                AMQPValue::LongLongInt(t as i64),
            );
        }
        h
    }
}

#[cfg(test)]
#[path = "publisher_tests.rs"]
mod tests;
