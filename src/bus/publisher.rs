//! Publishing with confirms: a publish succeeds only when the broker has taken
//! responsibility for the message. Mandatory publishes that come back unroutable fail.

use super::{Names, headers};
use crate::contract::Event;
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
}

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
        Ok(Publisher { channel, names })
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
        let mut h = FieldTable::default();
        // Every event carries a child of its command's trace (or starts one).
        let tp = crate::telemetry::trace::child_of(traceparent);
        h.insert(headers::TRACEPARENT.into(), header_text(&tp));
        self.publish(
            &self.names.events_exchange(),
            &event.status.routing_key(),
            &body,
            h,
            Some(&event.event_id.to_string()),
        )
        .await
    }

    /// Parks a command in the delay queue of `delay_ms`; it comes back to the commands
    /// exchange with the same routing key when its time is up. Each message expires a
    /// little early at random (up to a fifth), so retries of a burst do not return as a
    /// burst; a queue only expires messages at its head, so the spread stays that small.
    pub async fn delay(
        &self,
        delay_ms: u64,
        routing_key: &str,
        body: &[u8],
        h: FieldTable,
        attempt: u32,
    ) -> Result<(), PublishError> {
        // Expire a little early at random (up to a fifth), so the retries of a burst do
        // not come back as a burst; a queue expires messages only at its head, so the
        // spread stays that small.
        let expiration = delay_ms - rand::random_range(0..=delay_ms / 5);
        self.delay_exact(delay_ms, expiration, routing_key, body, h, attempt)
            .await
    }

    /// Parks a command in the delay queue of `queue_ms` for exactly `expiration_ms` (at
    /// most `queue_ms`): for callers that spread their messages themselves.
    pub async fn delay_exact(
        &self,
        queue_ms: u64,
        expiration_ms: u64,
        routing_key: &str,
        body: &[u8],
        mut h: FieldTable,
        attempt: u32,
    ) -> Result<(), PublishError> {
        h.insert(
            headers::ATTEMPT.into(),
            AMQPValue::LongLongInt(attempt.into()),
        );
        self.publish_with(
            &self.names.delay(queue_ms),
            routing_key,
            body,
            h,
            None,
            Some(expiration_ms.min(queue_ms)),
        )
        .await
    }

    /// Sends what no worker can process to the dead-letter queue, with the reason.
    pub async fn dead_letter(
        &self,
        routing_key: &str,
        body: &[u8],
        mut h: FieldTable,
        reason: &str,
    ) -> Result<(), PublishError> {
        h.insert(headers::REASON.into(), header_text(reason));
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
