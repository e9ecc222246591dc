//! The consume loop: many commands in flight at once, bounded; graceful shutdown in the
//! order that loses nothing (cancel consumers, finish or hand back in-flight work, wait
//! for publisher confirms, close channels, then the connection); reconnection when the
//! broker goes away; and while Redis or the broker's publishing side is away, no
//! deliveries taken and those in hand held (see [`super::outage`]).

use super::breaker::{Breaker, probe_tripped};
use super::handle::{Handler, Incoming};
use super::outage::{AfterFailure, ServiceGate, after_failure};
use crate::bus::{self, CommandConsumer, DeliveryInfo, Inbound, Ladder, Names, Publisher, Shape};
use crate::config::Settings;
use crate::contract::{FingerprintKey, ProviderName};
use crate::ratelimit::RateLimiter;
use crate::state::{HoldBoard, StateStore};
use crate::telemetry::label::{Finished, NoEvent, Service, Stage};
use crate::telemetry::{Label, Metrics, Readiness};
use backon::BackoffBuilder;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

/// How often a consuming worker asks Redis whether it is there, so that it stops taking
/// deliveries (and says so on /readyz) before one fails.
const REDIS_CHECK_EVERY: Duration = Duration::from_secs(1);

pub struct Worker {
    settings: Settings,
    store: StateStore,
    providers: crate::providers::Providers,
    metrics: Arc<Metrics>,
    ready: Readiness,
    name: String,
    limiter: Arc<RateLimiter>,
    fingerprint_key: FingerprintKey,
    holds: HoldBoard,
    breaker: Arc<Breaker>,
}

/// What a delivery's task needs: the handler of the moment (it changes when the
/// publisher's channel is reopened) and the gate it waits at.
#[derive(Clone)]
struct Shared {
    handler: watch::Receiver<Arc<Handler>>,
    gate: ServiceGate,
    slots: Arc<Semaphore>,
    /// `worker.hold_ms`.
    hold: Duration,
}

type Recovery<'a> = Pin<Box<dyn Future<Output = anyhow::Result<Option<Publisher>>> + Send + 'a>>;

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
        let breaker_settings = settings.breaker.clone();
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
            holds: HoldBoard::default(),
            breaker: Arc::new(Breaker::new(breaker_settings)),
        }
    }

    /// Runs until `stop` turns true, reconnecting to the broker whenever it is lost.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let reconnect = &self.settings.reconnect;
        let mut pauses = reconnect.backoff().build();
        loop {
            let started = Instant::now();
            match self.run_connected(&mut stop).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.ready.set(Service::Amqp, false);
                    self.metrics.reconnect(Service::Amqp, &e.to_string());
                    // A connection that served a while starts the pauses over.
                    if started.elapsed() > Duration::from_millis(reconnect.max_ms * 2) {
                        pauses = reconnect.backoff().build();
                    }
                    let pause = pauses.next().expect("reconnects forever");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stop.changed() => return Ok(()),
                    }
                }
            }
        }
    }

    fn handler(&self, publisher: Publisher) -> Arc<Handler> {
        let s = &self.settings;
        Arc::new(Handler {
            store: self.store.clone(),
            publisher: publisher.clone(),
            announcer: crate::outcome::Announcer {
                publisher,
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
            holds: self.holds.clone(),
            breaker: self.breaker.clone(),
        })
    }

    /// After `pause`, waits until Redis answers and the publisher's channel is open,
    /// reopening it on `conn` if the broker closed it (the new publisher is returned).
    /// Fails when the connection itself is gone.
    fn recover<'a>(
        &'a self,
        conn: &'a lapin::Connection,
        publisher: Publisher,
        pause: Duration,
    ) -> Recovery<'a> {
        Box::pin(async move {
            tokio::time::sleep(pause).await;
            let backoff = self.settings.reconnect.backoff();
            self.store.reach(backoff, &self.metrics, &self.ready).await;
            // Read before the first delivery is taken, so a hold set while this worker
            // was away is in force from its first command.
            refresh_holds(&self.store, &self.holds, &self.metrics).await;
            if publisher.is_connected() {
                return Ok(None);
            }
            self.metrics
                .reconnect(Service::Amqp, "the publisher channel closed");
            let names = Names::new(&self.settings.amqp.namespace);
            Ok(Some(Publisher::open(conn, names).await?))
        })
    }

    async fn run_connected(&self, stop: &mut watch::Receiver<bool>) -> anyhow::Result<()> {
        let s = &self.settings;
        let names = Names::new(&s.amqp.namespace);
        let conn = bus::connect_consuming(&s.amqp.url, &self.name).await?;
        bus::declare(&conn, &names, &Shape::of(s)).await?;
        let mut publisher = Publisher::open(&conn, names.clone()).await?;
        self.ready.set(Service::Amqp, true);
        let (handler_tx, handler) = watch::channel(self.handler(publisher.clone()));
        // A provider not enabled here leaves its commands in their queue.
        let enabled: Vec<_> = ProviderName::ALL
            .into_iter()
            .filter(|&p| s.enabled(p))
            .collect();
        let mut consumer =
            CommandConsumer::open(&conn, &names, &enabled, s.amqp.prefetch, &self.name).await?;
        // Nothing is taken before Redis answers (and after an outage, before it is back).
        let shared = Shared {
            handler,
            gate: ServiceGate::closed(Service::Redis),
            slots: Arc::new(Semaphore::new(s.worker.max_in_flight)),
            hold: Duration::from_millis(s.worker.hold_ms),
        };
        let gate = &shared.gate;
        let mut gate_changes = gate.changes();
        let _redis_check = watch_redis(self.store.clone(), gate.clone());
        let _holds = self.watch_holds();
        let mut recovery = Some(self.recover(&conn, publisher.clone(), Duration::ZERO));
        // Outages in a row wait longer before the services are asked again.
        let mut outages = s.reconnect.backoff().build();
        let mut tasks = JoinSet::new();
        let outcome = loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break Ok(()),
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if matches!(done, Ok(true)) {
                        outages = s.reconnect.backoff().build();
                    }
                }
                Ok(()) = gate_changes.changed(), if recovery.is_none() => {
                    let Some(service) = gate.away() else { continue };
                    self.ready.set(service, false);
                    consumer.cancel().await;
                    tracing::warn!(
                        worker = %self.name,
                        service = service.as_str(),
                        held = tasks.len(),
                        "a service is away: taking no deliveries, holding those in hand"
                    );
                    let pause = outages.next().expect("forever");
                    recovery = Some(self.recover(&conn, publisher.clone(), pause));
                }
                recovered = async { recovery.as_mut().expect("guarded").await }, if recovery.is_some() => {
                    recovery = None;
                    match recovered {
                        Ok(reopened) => {
                            if let Some(p) = reopened {
                                handler_tx.send_replace(self.handler(p.clone()));
                                publisher = p;
                            }
                            self.ready.set(Service::Amqp, true);
                            gate.open();
                            if let Err(e) = consumer.resume().await {
                                break Err(anyhow::anyhow!("consuming: {e}"));
                            }
                            tracing::info!(worker = %self.name, held = tasks.len(), "consuming");
                        }
                        Err(e) => break Err(e),
                    }
                }
                next = consumer.next(), if consumer.is_open() => match next {
                    Some(Ok(delivery)) => {
                        // Its publisher channel closed (a confirm that never came): held
                        // until a new one is open.
                        if !publisher.is_connected() {
                            gate.close(Service::Amqp);
                        }
                        tasks.spawn(handle_delivery(shared.clone(), delivery));
                    }
                    Some(Err(e)) => break Err(anyhow::anyhow!("consumer: {e}")),
                    // Cancelled for an outage: the last deliveries on the way are in.
                    None if gate.away().is_some() => {}
                    None => break Err(anyhow::anyhow!("the broker closed the consumer")),
                },
            }
        };
        self.ready.set(Service::Amqp, false);
        consumer.cancel().await;
        // Held commands cannot finish on a connection that is gone: no grace for them.
        let grace = match outcome.is_err() && gate.away().is_some() {
            true => Duration::ZERO,
            false => Duration::from_millis(s.worker.shutdown_grace_ms),
        };
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

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Closes `gate` when Redis stops answering, while the returned guard lives.
fn watch_redis(store: StateStore, gate: ServiceGate) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let mut every = tokio::time::interval(REDIS_CHECK_EVERY);
        loop {
            every.tick().await;
            if gate.away().is_none()
                && let Err(e) = store.ping().await
                && e.is_outage()
            {
                gate.close(Service::Redis);
            }
        }
    }))
}

impl Worker {
    /// Reads the holds every `worker.holds_refresh_ms`, and probes the accounts the
    /// breaker holds.
    fn watch_holds(&self) -> AbortOnDrop {
        let (store, board) = (self.store.clone(), self.holds.clone());
        let (providers, metrics) = (self.providers.clone(), self.metrics.clone());
        let every = Duration::from_millis(self.settings.worker.holds_refresh_ms);
        let probe_every = Duration::from_millis(self.settings.breaker.probe_every_ms);
        AbortOnDrop(tokio::spawn(async move {
            let mut every = tokio::time::interval(every);
            loop {
                every.tick().await;
                refresh_holds(&store, &board, &metrics).await;
                probe_tripped(&store, &board, &providers, &metrics, probe_every).await;
            }
        }))
    }
}

/// Reads the holds into `board`; on a Redis error the last known holds stay in force.
async fn refresh_holds(store: &StateStore, board: &HoldBoard, metrics: &Metrics) {
    match store.holds().await {
        Ok(holds) => {
            if board.replace(holds.clone()) {
                metrics.holds_changed(&holds);
            }
        }
        Err(e) => tracing::debug!(error = %e, "holds not read; the last known stay in force"),
    }
}

/// True once the gate is open. A delivery held past `hold` is put back as a fresh copy
/// (confirmed, then this one acked) and false returned: the broker would soon take it
/// back by itself (`consumer_timeout`) and count that as a delivery.
async fn wait_or_put_back(shared: &Shared, delivery: &Inbound, info: &DeliveryInfo) -> bool {
    if shared.gate.away().is_none() {
        return true;
    }
    loop {
        tokio::select! {
            _ = shared.gate.wait_open() => return true,
            _ = tokio::time::sleep(shared.hold) => {}
        }
        let publisher = shared.handler.borrow().publisher.clone();
        let copy = info.fresh_headers();
        match publisher
            .publish_command(delivery.routing_key(), delivery.body(), copy)
            .await
        {
            Ok(()) => {
                if let Err(e) = delivery.ack().await {
                    // Both copies then come back; the second is known by its key.
                    tracing::warn!(error = %e, "ack of a command put back failed");
                }
                tracing::warn!("held too long: a fresh copy of the command is back in its queue");
                return false;
            }
            Err(e) => tracing::warn!(error = %e, "could not put back a held command; holding it"),
        }
    }
}

/// Handles one delivery to its end: acked, or handed back (false). While a service is
/// away it is held, and tried again once the gate opens.
async fn handle_delivery(shared: Shared, delivery: Inbound) -> bool {
    let _slot = shared.slots.acquire().await.expect("never closed");
    let mut info = delivery.info();
    // A command that came without a valid trace starts one here; its retries and
    // check-backs (republished with these headers) stay in it.
    info.continue_trace(crate::telemetry::trace::continue_from(
        info.traceparent.as_deref(),
        info.tracestate.as_deref(),
    ));
    let metrics = shared.handler.borrow().metrics.clone();
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
        traceparent = info
            .traceparent
            .as_deref()
            .map_or("", |c| crate::telemetry::trace::split(c).0),
        trace_id = info
            .traceparent
            .as_deref()
            .and_then(crate::telemetry::trace::trace_id)
            .unwrap_or(""),
        key = tracing::field::Empty,
        payment_id = tracing::field::Empty,
    );
    crate::telemetry::continue_in(&span, info.traceparent.as_deref());
    let started = std::time::Instant::now();
    let msg = Incoming {
        body: delivery.body(),
        routing_key: delivery.routing_key(),
        info: &info,
    };
    let finished = async {
        loop {
            if !wait_or_put_back(&shared, &delivery, &info).await {
                return false;
            }
            let handler = shared.handler.borrow().clone();
            let (labels, result) = handler.handle(&msg).await;
            let e = match result {
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
                    return true;
                }
                Err(e) => e,
            };
            match after_failure(&e) {
                AfterFailure::Hold(service) => {
                    tracing::warn!(
                        error = %e,
                        service = service.as_str(),
                        "could not finish a command: holding it until the service is back"
                    );
                    shared.gate.close(service);
                }
                AfterFailure::HandBack => {
                    // Not an outage: hand it back after a pause, so that it never
                    // becomes a hot redelivery loop (the crash-loop guard counts it).
                    tracing::error!(error = %e, "could not finish a command; handing it back");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let _ = delivery.hand_back().await;
                    metrics.command_finished(
                        provider,
                        labels.method,
                        labels.operation,
                        Finished::NoEvent(NoEvent::HandedBack),
                    );
                    return false;
                }
            }
        }
    }
    .instrument(span)
    .await;
    metrics.in_flight().dec();
    finished
}
