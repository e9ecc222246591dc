//! The consume loop: many commands in flight at once, bounded; graceful shutdown in the
//! order that loses nothing (cancel consumers, finish or hand back in-flight work, wait
//! for publisher confirms, close channels, then the connection); reconnection when the
//! broker goes away.

use super::handle::{HandleError, Handler, Incoming};
use crate::bus::{self, CommandConsumer, Inbound, Ladder, Names, Publisher};
use crate::config::Settings;
use crate::contract::FingerprintKey;
use crate::ratelimit::RateLimiter;
use crate::state::{StateStore, StoreError};
use crate::telemetry::label::{Finished, NoEvent, Service, Stage};
use crate::telemetry::{Metrics, Readiness};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

pub struct Worker {
    settings: Settings,
    store: StateStore,
    providers: crate::providers::Providers,
    metrics: Arc<Metrics>,
    ready: Readiness,
    name: String,
    limiter: Arc<RateLimiter>,
    fingerprint_key: FingerprintKey,
}

impl Worker {
    pub fn new(
        settings: Settings,
        store: StateStore,
        providers: crate::providers::Providers,
        metrics: Arc<Metrics>,
        ready: Readiness,
        name: String,
        fingerprint_key: FingerprintKey,
    ) -> Self {
        let limiter = Arc::new(
            RateLimiter::from_settings(&settings, metrics.clone())
                .expect("the Redis URL parsed when the store connected"),
        );
        Worker {
            limiter,
            settings,
            store,
            providers,
            metrics,
            ready,
            name,
            fingerprint_key,
        }
    }

    /// Runs until `stop` turns true, reconnecting to the broker whenever it is lost.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.run_connected(&mut stop).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.ready.set(false);
                    self.metrics.reconnect(Service::Amqp, &e.to_string());
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return Ok(()),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn run_connected(&self, stop: &mut watch::Receiver<bool>) -> anyhow::Result<()> {
        let s = &self.settings;
        let names = Names::new(&s.amqp.namespace);
        let conn = bus::connect_consuming(&s.amqp.url, &self.name).await?;
        let setup = conn.create_channel().await?;
        bus::declare(
            &setup,
            &names,
            s.amqp.delivery_limit,
            &s.worker.retry_delays_ms,
            s.amqp.declare_events_queue,
        )
        .await?;
        let _ = bus::bounded("closing a channel", setup.close(200, "declared".into())).await;
        let publisher = Publisher::open(&conn, names.clone()).await?;
        let handler = Arc::new(Handler {
            store: self.store.clone(),
            publisher: publisher.clone(),
            announcer: crate::outcome::Announcer {
                publisher: publisher.clone(),
                store: self.store.clone(),
                metrics: self.metrics.clone(),
            },
            providers: self.providers.clone(),
            metrics: self.metrics.clone(),
            settings: s.worker.clone(),
            ladder: Ladder::new(&s.worker.retry_delays_ms),
            fingerprint_key: self.fingerprint_key.clone(),
            limiter: self.limiter.clone(),
            delivery_limit: s.amqp.delivery_limit,
        });
        let mut consumer =
            CommandConsumer::start(&conn, &names, s.amqp.prefetch, &self.name).await?;
        self.ready.set(true);
        tracing::info!(worker = %self.name, "consuming");
        let slots = Arc::new(Semaphore::new(s.worker.max_in_flight));
        let mut tasks = JoinSet::new();
        let outcome = loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break Ok(()),
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                next = consumer.next() => match next {
                    // Its publisher channel closed (a confirm that never came): start over
                    // on a new connection; this delivery goes back with the old one.
                    Some(Ok(_)) if !publisher.is_connected() => {
                        break Err(anyhow::anyhow!("the publisher channel closed"));
                    }
                    Some(Ok(delivery)) => {
                        let permit = slots.clone().acquire_owned().await.expect("never closed");
                        let handler = handler.clone();
                        tasks.spawn(async move {
                            handle_delivery(&handler, delivery).await;
                            drop(permit);
                        });
                    }
                    Some(Err(e)) => break Err(anyhow::anyhow!("consumer: {e}")),
                    None => break Err(anyhow::anyhow!("the broker closed the consumer")),
                },
            }
        };
        self.ready.set(false);
        consumer.cancel().await;
        let grace = Duration::from_millis(s.worker.shutdown_grace_ms);
        let finished =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            // Unacked deliveries go back to the queue when the channel closes.
            tracing::warn!(
                left = tasks.len(),
                "shutdown grace ran out: handing back in-flight commands"
            );
            tasks.abort_all();
        }
        publisher.close().await;
        consumer.close().await;
        bus::close(&conn).await;
        tracing::info!(worker = %self.name, "stopped consuming");
        outcome
    }
}

async fn handle_delivery(handler: &Handler, delivery: Inbound) {
    let mut info = delivery.info();
    // A command that came without a valid trace starts one here; its retries and
    // check-backs (republished with these headers) stay in it.
    info.continue_trace(crate::telemetry::trace::continue_from(
        info.traceparent.as_deref(),
    ));
    let metrics = &handler.metrics;
    let provider = delivery
        .routing_key()
        .split('.')
        .next()
        .unwrap_or("unknown");
    let provider = if crate::contract::ProviderName::ALL
        .iter()
        .any(|p| p.as_str() == provider)
    {
        provider
    } else {
        "unknown"
    };
    metrics.command_received(provider);
    metrics.in_flight().inc();
    // Exact to the millisecond for payfleet's publishers, to the second for others.
    let queue_wait = info.published_at_ms.map(|sent| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        (now - sent as f64 / 1000.0).max(0.0)
    });
    if let Some(wait) = queue_wait {
        metrics.stage(Stage::QueueWait, wait);
    }
    let span = tracing::info_span!(
        "command",
        routing_key = %delivery.routing_key(),
        attempt = info.attempt,
        traceparent = info.traceparent.as_deref().unwrap_or(""),
        trace_id = info
            .traceparent
            .as_deref()
            .and_then(crate::telemetry::trace::trace_id)
            .unwrap_or(""),
        key = tracing::field::Empty,
        payment_id = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let msg = Incoming {
        body: delivery.body(),
        routing_key: delivery.routing_key(),
        info: &info,
    };
    async {
        let (labels, result) = handler.handle(&msg).await;
        match result {
            Ok(handled) => {
                if let Err(e) = delivery.ack().await {
                    tracing::warn!(error = %e, "ack failed: the command will be redelivered");
                }
                metrics.command_finished(
                    provider,
                    labels.method,
                    labels.operation,
                    handled.label(),
                );
                // End to end: from the publish to the ack.
                metrics.command_duration(
                    provider,
                    labels.operation,
                    queue_wait.unwrap_or_default() + started.elapsed().as_secs_f64(),
                );
            }
            Err(e) => {
                // The infrastructure failed, not the command: hand it back after a pause
                // so a Redis or broker hiccup never becomes a hot redelivery loop.
                tracing::error!(error = %e, "could not finish a command; handing it back");
                if let HandleError::Store(StoreError::Redis(r)) = &e
                    && (r.is_io_error() || r.is_connection_dropped() || r.is_connection_refusal())
                {
                    // The connection manager reconnects on the next command.
                    metrics.reconnect(Service::Redis, &r.to_string());
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                let _ = delivery.hand_back().await;
                metrics.command_finished(
                    provider,
                    labels.method,
                    labels.operation,
                    Finished::NoEvent(NoEvent::HandedBack),
                );
            }
        }
    }
    .instrument(span)
    .await;
    metrics.in_flight().dec();
}
