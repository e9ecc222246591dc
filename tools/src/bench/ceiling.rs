//! The broker ceiling: the same messages through the fleet's own topology in a namespace
//! of their own (publish with confirm onto the commands exchange → quorum command queue
//! → consume with the same prefetch and in-flight bound → publish a result with confirm
//! onto the events exchange → ack → the results queue), with no pipeline work at all.
//! What the fleet does on top of this is its own cost.

use super::load::{self, Message, Pacing, Target, require_all};
use super::usage::{self, CpuMeter, ProcessUsage};
use lapin::types::FieldTable;
use payfleet::bus::{self, CommandConsumer, Names, Publisher};
use payfleet::config::Settings;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    pub messages: usize,
    pub message_bytes: usize,
    pub seconds: f64,
    pub messages_per_second: f64,
    /// CPU of the local RabbitMQ and Redis over the measurement (shared: an upper bound).
    pub shared_services: Vec<ProcessUsage>,
    /// CPU of the bench process (publisher, relay, results consumer), in ms.
    pub bench_cpu_ms: f64,
    /// RabbitMQ CPU per message, every node of a cluster summed (shared: an upper bound).
    pub broker_cpu_us_per_message: f64,
    /// Publish → relayed result: two broker hops (command queue, results queue) with
    /// no work between them, at the same pacing. The fleet's overhead contains one
    /// such hop, so about half of this is the broker's share of it.
    pub latency: super::Percentiles,
}

/// The key of a relayed command (every one is terminal here).
fn relayed(body: &[u8]) -> Option<(String, &'static str)> {
    #[derive(serde::Deserialize)]
    struct Probe {
        idempotency_key: String,
    }
    let p: Probe = serde_json::from_slice(body).ok()?;
    Some((p.idempotency_key, "relayed"))
}

pub async fn measure(
    settings: &Settings,
    nodes: super::Nodes,
    messages: Arc<Vec<Message>>,
    pacing: Pacing,
    timeout: Duration,
) -> anyhow::Result<Ceiling> {
    let s = settings;
    let names = Names::new(&format!("{}-ceiling", s.amqp.namespace));
    let (conn, setup) = super::fleet::declare(s, &names, "payfleet-bench-relay").await?;
    let target = Target {
        url: s.amqp.url.clone(),
        names: names.clone(),
        exchange: names.commands_exchange(),
        results_queue: names.events_queue(),
        terminal: relayed,
    };
    let n = messages.len();
    let message_bytes = messages.iter().map(|m| m.body.len()).sum::<usize>() / n.max(1);
    let publisher = Publisher::open(&conn, names.clone()).await?;
    let mut consumer = CommandConsumer::start(
        &conn,
        &names,
        &payfleet::contract::ProviderName::ALL,
        s.amqp.prefetch,
        "bench-relay",
    )
    .await?;
    let in_flight = s.worker.max_in_flight;
    let slots = Arc::new(Semaphore::new(in_flight));
    // The relay runs until the load is done; it ends early only on an error.
    let services = CpuMeter::shared();
    let timings = tokio::select! {
        t = load::drive(&target, messages.clone(), pacing, timeout) => t,
        r = relay(&mut consumer, &publisher, &names, &slots) => {
            Err(r.err().unwrap_or_else(|| anyhow::anyhow!("the broker closed the relay's consumer")))
        }
    };
    let (bench_cpu_ms, shared_services) = usage::split_bench(services.finish()?);
    // The worker's stopping order: cancel, finish what is in flight (its acks), wait for
    // confirms, close, then clean up.
    consumer.cancel().await;
    let all = u32::try_from(in_flight).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(10), slots.acquire_many(all)).await;
    publisher.close().await;
    consumer.close().await;
    let cleanup = bus::delete_all(&setup, &names, &s.worker.retry_delays_ms).await;
    let _ = conn.close(200, "bye".into()).await;
    let timings = timings?;
    cleanup?;
    require_all("broker ceiling", &timings, n)?;
    let seconds = timings.elapsed.as_secs_f64();
    let latency = messages
        .iter()
        .zip(&timings.published_us)
        .filter_map(|(m, &sent)| Some(timings.done.get(&m.key)?.0.saturating_sub(sent)))
        .collect();
    Ok(Ceiling {
        latency: super::Percentiles::of_micros(latency),
        messages: n,
        message_bytes,
        seconds,
        messages_per_second: n as f64 / seconds,
        broker_cpu_us_per_message: usage::cpu_us_per(
            &shared_services,
            nodes.broker_role(),
            n as u64,
        ),
        shared_services,
        bench_cpu_ms,
    })
}

/// What a worker does on the bus, and nothing else.
async fn relay(
    consumer: &mut CommandConsumer,
    publisher: &Publisher,
    names: &Names,
    slots: &Arc<Semaphore>,
) -> anyhow::Result<()> {
    let events = names.events_exchange();
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let permit = slots.clone().acquire_owned().await?;
        let (publisher, events) = (publisher.clone(), events.clone());
        tokio::spawn(async move {
            let sent = publisher
                .publish(
                    &events,
                    "payment.succeeded",
                    delivery.body(),
                    FieldTable::default(),
                    None,
                )
                .await;
            if sent.is_ok() {
                let _ = delivery.ack().await;
            }
            drop(permit);
        });
    }
    Ok(())
}
