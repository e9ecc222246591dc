//! The delay queues' canary: the leading reconciler sends a small message through every
//! delay queue and watches for it on `<ns>.canary`, where the commands exchange routes
//! it back (`canary.<ms>`, bound to no provider's queue).
//!
//! Why: on RabbitMQ 3.10.8, after `kill -9` of the node leading a delay queue, the new
//! leader kept every message that expired there and forwarded none (3 runs of 4 here:
//! 906 of 999 messages held, `messages_ready` 0). At-least-once dead-lettering is done
//! by one worker process on the leader, and it did not resume (rabbitmq-server#7677,
//! #15548). Nothing was lost: moving the queue's leader to another node released all
//! of them. A parked command gives no sign of this; a canary that does not come back
//! does, and the reconciler then holds its judgement of parked commands.

use super::{Names, PublishError, Publisher, Shape};
use crate::config::AmqpNodes;
use lapin::options::BasicGetOptions;
use lapin::{BasicProperties, Channel, Connection};
use std::collections::BTreeMap;
use std::time::Duration;

/// The routing keys of canaries: `canary.<ms>`.
pub const ROUTING_PREFIX: &str = "canary";

/// How late past its delay a canary may come back before its queue counts as stalled:
/// a dead-letter worker forwards within a second; after a leader change, within a few.
pub const STALL_GRACE: Duration = Duration::from_secs(30);

/// Canaries collected per look, at most (the queue keeps 100).
const COLLECT: usize = 100;

/// Whether a delay queue hands its expired messages back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Its canary came back, or is not late yet.
    Flowing,
    /// Its canary is late by more than [`STALL_GRACE`]: what expires there is kept.
    Stalled,
}

/// A delay queue's flow, from when its canary out was sent (`None`: none is out).
pub fn flow(sent_ms: Option<u64>, now_ms: u64, delay_ms: u64) -> Flow {
    let due = |sent: u64| sent + delay_ms + STALL_GRACE.as_millis() as u64;
    match sent_ms {
        Some(sent) if now_ms > due(sent) => Flow::Stalled,
        _ => Flow::Flowing,
    }
}

pub struct Canary {
    nodes: AmqpNodes,
    names: Names,
    shape: Shape,
    /// Tells this reconciler's canaries from those of an earlier leader.
    owner: String,
    /// The connection, a confirm-mode publisher on it, and a channel to collect on.
    link: Option<(Connection, Publisher, Channel)>,
    /// Per delay (ms): when the canary out was sent (ms since the epoch).
    out: BTreeMap<u64, Option<u64>>,
}

impl Canary {
    pub fn new(nodes: &AmqpNodes, names: Names, shape: Shape, owner: &str) -> Self {
        let out = shape.delays_ms.iter().map(|&ms| (ms, None)).collect();
        Canary {
            nodes: nodes.clone(),
            names,
            shape,
            owner: owner.to_owned(),
            link: None,
            out,
        }
    }

    /// Forgets the canaries out: another reconciler leads, and collects them.
    pub fn forget(&mut self) {
        self.out.values_mut().for_each(|sent| *sent = None);
    }

    /// One look: collects the canaries that came back, sends one into each delay queue
    /// that has none out, and says how each flows. On an error the connection is
    /// dropped (the next look opens another) and the canaries out stay out.
    pub async fn look(&mut self, now_ms: u64) -> Result<Vec<(u64, Flow)>, PublishError> {
        let looked = self.collect_and_send(now_ms).await;
        if looked.is_err() {
            self.close().await;
        }
        looked?;
        Ok(self
            .out
            .iter()
            .map(|(&ms, &sent)| (ms, flow(sent, now_ms, ms)))
            .collect())
    }

    async fn collect_and_send(&mut self, now_ms: u64) -> Result<(), PublishError> {
        let (publisher, ch) = self.linked().await?;
        for _ in 0..COLLECT {
            let got = super::bounded(
                "collecting a canary",
                ch.basic_get(self.names.canary().into(), BasicGetOptions { no_ack: true }),
            )
            .await?;
            let Some(message) = got else { break };
            let delivery = &message.delivery;
            match read(&delivery.data) {
                // Only this reconciler's canary out counts: an older one is late news.
                Some(c) if c.by == self.owner => {
                    let out = self.out.get_mut(&c.delay_ms);
                    if let Some(out) = out.filter(|o| **o == Some(c.sent_ms)) {
                        *out = None;
                    }
                }
                Some(_) => {}
                // Published under `canary.` by someone else: dropped, and said (its body
                // is not shown: it may hold anything, card data included).
                None => tracing::warn!(
                    routing_key = delivery.routing_key.as_str(),
                    bytes = delivery.data.len(),
                    "a message that is no canary came to the canary queue: dropped"
                ),
            }
        }
        for (&ms, sent) in self.out.iter_mut().filter(|(_, sent)| sent.is_none()) {
            let canary = CanaryBody {
                delay_ms: ms,
                sent_ms: now_ms,
                by: self.owner.clone(),
            };
            let body = serde_json::to_vec(&canary).expect("a canary serializes");
            let props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into());
            let (exchange, key) = (self.names.delay(ms), format!("{ROUTING_PREFIX}.{ms}"));
            publisher.confirmed(&exchange, &key, &body, props).await?;
            *sent = Some(now_ms);
        }
        Ok(())
    }

    /// The open channel, or a new connection whose topology is declared first (a
    /// canary into a delay queue whose way back is missing would be kept there).
    async fn linked(&mut self) -> Result<(Publisher, Channel), lapin::Error> {
        if let Some((conn, publisher, ch)) = &self.link
            && conn.status().connected()
            && publisher.is_connected()
            && ch.status().connected()
        {
            return Ok((publisher.clone(), ch.clone()));
        }
        self.close().await;
        let conn = super::connect(&self.nodes, "payfleet-canary").await?;
        super::declare(&conn, &self.names, &self.shape).await?;
        let publisher = Publisher::open(&conn, self.names.clone()).await?;
        let ch = super::bounded("opening a canary channel", conn.create_channel()).await?;
        self.link = Some((conn, publisher.clone(), ch.clone()));
        Ok((publisher, ch))
    }

    pub async fn close(&mut self) {
        if let Some((conn, _, _)) = self.link.take() {
            super::close(&conn).await;
        }
    }
}

/// What a canary says: the delay queue it goes through, when and by whom it was sent.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct CanaryBody {
    delay_ms: u64,
    sent_ms: u64,
    by: String,
}

fn read(body: &[u8]) -> Option<CanaryBody> {
    serde_json::from_slice(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: u64 = STALL_GRACE.as_millis() as u64;

    #[test]
    fn a_queue_with_no_canary_out_flows() {
        assert_eq!(flow(None, 1_000_000, 1000), Flow::Flowing);
    }

    #[test]
    fn a_canary_out_for_its_delay_and_the_grace_is_not_late() {
        assert_eq!(flow(Some(0), 1000 + GRACE, 1000), Flow::Flowing);
    }

    #[test]
    fn a_canary_out_past_its_delay_and_the_grace_stalls_its_queue() {
        assert_eq!(flow(Some(0), 1001 + GRACE, 1000), Flow::Stalled);
    }

    #[test]
    fn a_canary_reads_back_as_sent_and_anything_else_is_no_canary() {
        let body = br#"{"delay_ms":1000,"sent_ms":42,"by":"me"}"#;
        let canary = CanaryBody {
            delay_ms: 1000,
            sent_ms: 42,
            by: "me".into(),
        };
        assert_eq!(read(body), Some(canary));
        assert_eq!(read(b"not json"), None);
        assert_eq!(read(br#"{"amount":1}"#), None);
    }
}
