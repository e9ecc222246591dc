//! The load: publishes messages with confirms, closed-loop (a bounded number outstanding,
//! the next one published when one finishes) or open-loop (at a fixed rate), and times
//! each message from its publish to its terminal result on a results queue. The fleet
//! run and the broker ceiling both go through here, so they are timed alike.

use anyhow::{Context, bail};
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use payfleet::bus::{self, Names, Publisher};
use payfleet_sim::arrivals::unix_micros;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

#[derive(Debug, Clone)]
pub struct Message {
    pub key: String,
    pub payment_id: String,
    pub routing_key: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pacing {
    /// At most this many published and not yet terminal.
    Closed { outstanding: usize },
    /// This many per second, whatever the fleet does.
    Open { per_second: f64 },
}

/// Where messages go and where their results come back.
pub struct Target {
    pub url: payfleet::config::AmqpNodes,
    pub names: Names,
    pub exchange: String,
    pub results_queue: String,
    /// The key and status of a terminal result; `None` for anything else.
    pub terminal: fn(&[u8]) -> Option<(String, &'static str)>,
}

pub struct Timings {
    /// Publish time (µs since the epoch) of each message, by index.
    pub published_us: Vec<u64>,
    /// First terminal result per key: when it arrived, and its status.
    pub done: HashMap<String, (u64, &'static str)>,
    /// From the first publish to the last terminal result (or the timeout).
    pub elapsed: Duration,
}

/// Publishes every message and waits for their terminal results, or the timeout.
pub async fn drive(
    target: &Target,
    messages: Arc<Vec<Message>>,
    pacing: Pacing,
    timeout: Duration,
) -> anyhow::Result<Timings> {
    let n = messages.len();
    let window = match pacing {
        Pacing::Closed { outstanding } => Some(Arc::new(Semaphore::new(outstanding.max(1)))),
        Pacing::Open { .. } => None,
    };
    let collector = Collector::start(target, window.clone()).await?;
    let conn = bus::connect(&target.url, "payfleet-bench-publisher").await?;
    let publisher = Publisher::open(&conn, target.names.clone()).await?;
    let stamps: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let exchange: Arc<str> = target.exchange.as_str().into();
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut publishes = JoinSet::new();
    for i in 0..n {
        match (&window, pacing) {
            (Some(w), _) => tokio::time::timeout_at(deadline, w.acquire())
                .await
                .context("timed out waiting for results to publish more")?
                .expect("never closed")
                .forget(),
            (None, Pacing::Open { per_second }) => {
                let due = Duration::from_secs_f64(i as f64 / per_second);
                tokio::time::sleep_until((started + due).into()).await;
            }
            (None, Pacing::Closed { .. }) => unreachable!("closed pacing has a window"),
        }
        let (publisher, stamps, messages, exchange) = (
            publisher.clone(),
            stamps.clone(),
            messages.clone(),
            exchange.clone(),
        );
        publishes.spawn(async move {
            let m = &messages[i];
            stamps[i].store(unix_micros(), Ordering::Relaxed);
            publisher
                .publish(
                    &exchange,
                    &m.routing_key,
                    &m.body,
                    FieldTable::default(),
                    None,
                )
                .await
        });
        while let Some(done) = publishes.try_join_next() {
            done?.context("publishing")?;
        }
    }
    while let Some(done) = publishes.join_next().await {
        done?.context("publishing")?;
    }
    let mut count = collector.count.clone();
    let all_done = tokio::time::timeout_at(deadline, count.wait_for(|c| *c >= n)).await;
    let elapsed = started.elapsed();
    publisher.close().await;
    let _ = conn.close(200, "bye".into()).await;
    let done = collector.stop().await;
    if all_done.is_err() {
        tracing::warn!(
            done = done.len(),
            of = n,
            "timed out before every result arrived"
        );
    }
    Ok(Timings {
        published_us: stamps.iter().map(|s| s.load(Ordering::Relaxed)).collect(),
        done,
        elapsed,
    })
}

const CONSUMER_TAG: &str = "payfleet-bench";

/// Consumes the results queue and stamps each key's first terminal result.
struct Collector {
    conn: lapin::Connection,
    channel: lapin::Channel,
    done: Arc<Mutex<HashMap<String, (u64, &'static str)>>>,
    count: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    async fn start(target: &Target, window: Option<Arc<Semaphore>>) -> anyhow::Result<Self> {
        let conn = bus::connect(&target.url, "payfleet-bench-collector").await?;
        let ch = conn.create_channel().await?;
        ch.basic_qos(1000, BasicQosOptions::default()).await?;
        let mut consumer = ch
            .basic_consume(
                target.results_queue.as_str().into(),
                CONSUMER_TAG.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("consuming {}", target.results_queue))?;
        let done = Arc::new(Mutex::new(HashMap::new()));
        let (tx, count) = watch::channel(0);
        let (parse, map) = (target.terminal, done.clone());
        let task = tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                let at = unix_micros();
                if let Some((key, status)) = parse(&d.data) {
                    let mut map = map.lock().expect("results lock");
                    if let std::collections::hash_map::Entry::Vacant(e) = map.entry(key) {
                        e.insert((at, status));
                        tx.send_replace(map.len());
                        if let Some(w) = &window {
                            w.add_permits(1);
                        }
                    }
                }
                if d.ack(BasicAckOptions::default()).await.is_err() {
                    break;
                }
            }
        });
        Ok(Collector {
            conn,
            channel: ch,
            done,
            count,
            task,
        })
    }

    async fn stop(self) -> HashMap<String, (u64, &'static str)> {
        let _ = self
            .channel
            .basic_cancel(CONSUMER_TAG.into(), BasicCancelOptions::default())
            .await;
        self.task.abort();
        let _ = self.channel.close(200, "bye".into()).await;
        let _ = self.conn.close(200, "bye".into()).await;
        std::mem::take(&mut *self.done.lock().expect("results lock"))
    }
}

/// Fails when a measurement saw fewer terminal results than messages.
pub fn require_all(what: &str, timings: &Timings, n: usize) -> anyhow::Result<()> {
    if timings.done.len() < n {
        bail!(
            "{what}: only {} of {n} messages reached a terminal result before the timeout",
            timings.done.len()
        );
    }
    Ok(())
}
