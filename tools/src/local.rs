//! A whole fleet in one process (sandbox, gateway, workers) in a namespace of its own
//! on the local RabbitMQ and Redis: the demo, the benchmarks and the integration tests
//! all run on it, so they exercise the same code as separate processes would.

use crate::settings::FleetSettings;
use anyhow::Context;
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use payfleet::app::{self, Shutdown};
use payfleet::bus::{self, Names, Shape};
use payfleet::config::AmqpNodes;
use payfleet::contract::operator::OperatorEvent;
use payfleet::contract::{Event, IdempotencyKey};
use payfleet_sim::Sandbox;
use secrecy::SecretString;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

pub struct LocalFleet {
    pub settings: FleetSettings,
    pub sandbox: Arc<Sandbox>,
    /// The gateway's callback port.
    pub gateway_addr: SocketAddr,
    /// The gateway's `/metrics`, `/healthz`, `/readyz`.
    pub gateway_ops_addr: SocketAddr,
    pub sandbox_addr: SocketAddr,
    shutdown: Shutdown,
    servers: Vec<JoinHandle<()>>,
    workers: Vec<(Shutdown, JoinHandle<anyhow::Result<()>>)>,
}

/// Settings for a fleet of its own: a fresh namespace and key prefix, ports chosen by
/// the OS, and a random shared secret unless one is set.
pub fn isolated(mut settings: FleetSettings, label: &str) -> FleetSettings {
    let run = &uuid::Uuid::new_v4().simple().to_string()[..10];
    settings.amqp.namespace = format!("{label}-{run}");
    settings.redis.key_prefix = format!("{label}-{run}");
    settings.redis.retention_ms = 3_600_000;
    settings.gateway.listen = "127.0.0.1:0".parse().expect("address");
    settings.gateway.ops_listen = "127.0.0.1:0".parse().expect("address");
    settings.sandbox.listen = "127.0.0.1:0".parse().expect("address");
    settings.worker.ops_listen = "127.0.0.1:0".parse().expect("address");
    if settings.secrets.ecommpay_secret_key.is_none() {
        let secret = SecretString::from(uuid::Uuid::new_v4().simple().to_string());
        settings.secrets.ecommpay_secret_key = Some(secret.clone());
        settings.sandbox_ecommpay_secret_key = Some(secret);
    }
    if settings.secrets.epay_client_secret.is_none() {
        let secret = SecretString::from(uuid::Uuid::new_v4().simple().to_string());
        settings.secrets.epay_client_secret = Some(secret.clone());
        settings.sandbox_epay_client_secret = Some(secret);
    }
    if settings.sandbox_epay_client_secret.is_none() {
        settings.sandbox_epay_client_secret = settings.secrets.epay_client_secret.clone();
    }
    if settings.secrets.epay_fingerprint_key.is_none() {
        let key = SecretString::from(uuid::Uuid::new_v4().simple().to_string());
        settings.secrets.epay_fingerprint_key = Some(key);
    }
    // The sandbox serves the merchant the workers are configured as.
    settings.sandbox.epay_client_id = settings.epay.client_id.clone();
    settings.sandbox.epay_terminal_id = settings.epay.terminal_id.clone();
    settings
}

impl LocalFleet {
    /// Starts the gateway, then the sandbox calling back to it, then `workers` workers
    /// calling the sandbox.
    pub async fn start(mut settings: FleetSettings, workers: usize) -> anyhow::Result<Self> {
        let shutdown = Shutdown::default();
        let conn = bus::connect(&settings.amqp.url, "payfleet-local-setup").await?;
        let s = &settings;
        bus::declare(&conn, &Names::new(&s.amqp.namespace), &Shape::of(s)).await?;
        let _ = conn.close(200, "declared".into()).await;
        // The sandbox's address first: the gateway confirms epay postLinks with it.
        let sandbox_listener = tokio::net::TcpListener::bind(settings.sandbox.listen).await?;
        let sandbox_addr = sandbox_listener.local_addr()?;
        let epay = &mut settings.core.epay;
        for url in [&mut epay.oauth_url, &mut epay.api_url, &mut epay.status_url] {
            *url = format!("http://{sandbox_addr}");
        }
        let (gateway_addrs, gateway) = app::spawn_gateway(&settings, &shutdown).await?;
        let gateway_addr = gateway_addrs.callbacks;
        settings.sandbox.ecommpay_callback_url =
            format!("http://{gateway_addr}/callbacks/ecommpay");
        settings.epay.post_link_url = format!("http://{gateway_addr}/callbacks/epay");
        settings.epay.failure_post_link_url = format!("http://{gateway_addr}/callbacks/epay");
        let (sandbox_addr, sandbox, sandbox_task) =
            spawn_sandbox(sandbox_listener, &settings, &shutdown)?;
        settings.ecommpay.base_url = format!("http://{sandbox_addr}");
        let mut fleet = LocalFleet {
            settings,
            sandbox,
            gateway_addr,
            gateway_ops_addr: gateway_addrs.ops,
            sandbox_addr,
            shutdown,
            servers: vec![gateway, sandbox_task],
            workers: Vec::new(),
        };
        for _ in 0..workers {
            fleet.add_worker().await?;
        }
        Ok(fleet)
    }

    /// Starts one more worker; returns its index.
    pub async fn add_worker(&mut self) -> anyhow::Result<usize> {
        let n = self.workers.len();
        let stop = Shutdown::default();
        let (_, task) = app::spawn_worker(
            &self.settings,
            &format!("{}-w{n}", self.settings.amqp.namespace),
            &stop,
            false,
        )
        .await?;
        self.workers.push((stop, task));
        Ok(n)
    }

    /// Stops one worker gracefully and waits for it.
    pub async fn stop_worker(&mut self, n: usize) -> anyhow::Result<()> {
        let (stop, task) = &mut self.workers[n];
        stop.trigger();
        // A finished task stands in, so that `stop` can await every worker again.
        std::mem::replace(task, tokio::spawn(async { Ok(()) })).await??;
        Ok(())
    }

    pub fn names(&self) -> Names {
        Names::new(&self.settings.amqp.namespace)
    }

    /// A publisher for this fleet's bus.
    pub async fn publisher(&self) -> anyhow::Result<(lapin::Connection, bus::Publisher)> {
        let conn = bus::connect(&self.settings.amqp.url, "payfleet-local-publisher").await?;
        let publisher = bus::Publisher::open(&conn, self.names()).await?;
        Ok((conn, publisher))
    }

    /// Stops everything, then removes this fleet's exchanges and queues.
    pub async fn stop(self) -> anyhow::Result<()> {
        for (stop, _) in &self.workers {
            stop.trigger();
        }
        for (_, task) in self.workers {
            task.await??;
        }
        self.shutdown.trigger();
        for s in self.servers {
            let _ = s.await;
        }
        let conn = bus::connect(&self.settings.amqp.url, "payfleet-local-cleanup").await?;
        let ch = conn.create_channel().await?;
        bus::delete_all(
            &ch,
            &Names::new(&self.settings.amqp.namespace),
            &self.settings.worker.retry_delays_ms,
        )
        .await
        .context("deleting the fleet's queues")?;
        let _ = conn.close(200, "bye".into()).await;
        Ok(())
    }
}

/// Serves the simulator on a listener already bound (so that its address can be
/// configured into the processes that call it before it starts) until `shutdown`.
pub fn spawn_sandbox(
    listener: tokio::net::TcpListener,
    settings: &FleetSettings,
    shutdown: &Shutdown,
) -> anyhow::Result<(SocketAddr, Arc<Sandbox>, JoinHandle<()>)> {
    let addr = listener.local_addr()?;
    let sandbox = Sandbox::new(
        settings.sandbox.clone(),
        secret(&settings.sandbox_ecommpay_secret_key, "sandbox ECommPay")?,
        secret(&settings.sandbox_epay_client_secret, "sandbox epay")?,
    );
    let serving = payfleet_sim::serve(listener, sandbox.clone(), shutdown.wait());
    let task = tokio::spawn(async move {
        if let Err(e) = serving.await {
            tracing::error!(error = %e, "the simulator stopped");
        }
    });
    Ok((addr, sandbox, task))
}

/// A secret the simulator needs, which `isolated` always sets.
fn secret(value: &Option<SecretString>, what: &str) -> anyhow::Result<SecretString> {
    value
        .clone()
        .with_context(|| format!("the {what} secret is not set"))
}

/// A check of an event's body, given its routing key, against the contract beyond
/// what the types decode (the test suite's JSON Schemas): `Err` says how it breaks it.
pub type EventCheck = Arc<dyn Fn(&str, &[u8]) -> Result<(), String> + Send + Sync>;

/// Every event the fleet publishes, read from its `<ns>.events` queue: payment events
/// and, apart, operator events (`operator.*`). The tap reconnects when the broker goes
/// away, so it survives a broker restart. Events that break the contract are kept
/// apart too ([`EventTap::broken`]), so a test can fail on them.
#[derive(Clone, Default)]
pub struct EventTap {
    events: Arc<Mutex<Vec<Event>>>,
    operator: Arc<Mutex<Vec<OperatorEvent>>>,
    broken: Arc<Mutex<Vec<String>>>,
}

impl EventTap {
    pub async fn start(fleet: &LocalFleet) -> anyhow::Result<Self> {
        Self::on_queue(&fleet.settings.amqp.url, &fleet.names().events_queue()).await
    }

    /// As [`EventTap::start`], every event also put to `check`.
    pub async fn start_checked(fleet: &LocalFleet, check: EventCheck) -> anyhow::Result<Self> {
        let (url, queue) = (&fleet.settings.amqp.url, fleet.names().events_queue());
        Self::tap(url, &queue, Some(check)).await
    }

    /// Taps a queue; fails if the first connection cannot be made. A watchdog
    /// reconnects when the queue holds messages but none arrive (a consumer left stalled
    /// by a broker restart).
    pub async fn on_queue(url: &AmqpNodes, queue: &str) -> anyhow::Result<Self> {
        Self::tap(url, queue, None).await
    }

    async fn tap(url: &AmqpNodes, queue: &str, check: Option<EventCheck>) -> anyhow::Result<Self> {
        let tap = EventTap::default();
        let consumer = Self::consume(url, queue).await?;
        let (events, url, queue) = (tap.events.clone(), url.clone(), queue.to_owned());
        let (operator, broken) = (tap.operator.clone(), tap.broken.clone());
        tokio::spawn(async move {
            let mut current = Some(consumer);
            loop {
                if let Some((conn, mut consumer)) = current.take() {
                    let mut watchdog = tokio::time::interval(Duration::from_secs(3));
                    let mut seen = events.lock().expect("events lock").len();
                    loop {
                        tokio::select! {
                            next = consumer.next() => match next {
                                Some(Ok(d)) => {
                                    let key = d.routing_key.as_str();
                                    let read = if key.starts_with("operator.") {
                                        serde_json::from_slice::<OperatorEvent>(&d.data)
                                            .map(|e| operator.lock().expect("events lock").push(e))
                                    } else {
                                        serde_json::from_slice::<Event>(&d.data)
                                            .map(|e| events.lock().expect("events lock").push(e))
                                    };
                                    let verdict = read
                                        .map_err(|e| e.to_string())
                                        .and_then(|()| check.as_ref().map_or(Ok(()), |c| c(key, &d.data)));
                                    if let Err(e) = verdict {
                                        tracing::error!(error = %e, routing_key = key, "an event that breaks the contract");
                                        broken.lock().expect("events lock").push(format!("{key}: {e}"));
                                    }
                                    let ack = d.ack(BasicAckOptions::default());
                                    let _ = tokio::time::timeout(Duration::from_secs(2), ack).await;
                                }
                                _ => break,
                            },
                            _ = watchdog.tick() => {
                                let now = events.lock().expect("events lock").len();
                                let waiting = match conn.create_channel().await {
                                    Ok(ch) => bus::queue_depth(&ch, &queue).await.unwrap_or(0),
                                    Err(_) => 1,
                                };
                                if now == seen && waiting > 0 {
                                    break;
                                }
                                seen = now;
                            }
                        }
                    }
                    let _ = conn.close(200, "reconnecting".into()).await;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                current = Self::consume(&url, &queue).await.ok();
            }
        });
        Ok(tap)
    }

    async fn consume(
        url: &AmqpNodes,
        queue: &str,
    ) -> anyhow::Result<(lapin::Connection, lapin::Consumer)> {
        let conn = bus::connect(url, "payfleet-event-tap").await?;
        let ch = conn.create_channel().await?;
        ch.basic_qos(1000, BasicQosOptions::default()).await?;
        let consumer = ch
            .basic_consume(
                queue.into(),
                "event-tap".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok((conn, consumer))
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("events lock").clone()
    }

    /// The events that broke the contract, by routing key and how.
    pub fn broken(&self) -> Vec<String> {
        self.broken.lock().expect("events lock").clone()
    }

    pub fn operator_events(&self) -> Vec<OperatorEvent> {
        self.operator.lock().expect("events lock").clone()
    }

    /// The events after the first `from`, for readers that keep their place.
    pub fn events_from(&self, from: usize) -> Vec<Event> {
        let events = self.events.lock().expect("events lock");
        events.get(from..).unwrap_or_default().to_vec()
    }

    /// Terminal events per key.
    pub fn terminal_by_key(&self) -> HashMap<IdempotencyKey, Vec<Event>> {
        let mut map: HashMap<IdempotencyKey, Vec<Event>> = HashMap::new();
        for e in self.events().into_iter().filter(|e| e.status.is_terminal()) {
            map.entry(e.idempotency_key.clone()).or_default().push(e);
        }
        map
    }

    /// Waits until every key has a terminal event, or the timeout.
    pub async fn wait_terminal(&self, keys: &[IdempotencyKey], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let done = self.terminal_by_key();
            if keys.iter().all(|k| done.contains_key(k)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
