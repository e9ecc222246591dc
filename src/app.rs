//! Assembling the processes from settings: used by the CLI, the demo, the benchmarks
//! and the test harness alike, so they all run the same code.
//!
//! Shutdown follows mini-redis: a [`Shutdown`] signal is broadcast to every part, and
//! the caller then waits for each part's task to finish.

use crate::bus::{Canary, Names, PublisherLink, Shape};
use crate::config::Settings;
use crate::contract::FingerprintKey;
use crate::gateway::{self, Gateway};
use crate::pipeline::Worker;
use crate::providers::Providers;
use crate::providers::ecommpay::india_hours::OffsetClock;
use crate::providers::ecommpay::{Ecommpay, Gate};
use crate::providers::epay::Epay;
use crate::ratelimit::RateLimiter;
use crate::reconciler::Reconciler;
use crate::state::{RedisConn, StateStore};
use crate::telemetry::label::Listener;
use crate::telemetry::{Limits, Metrics, Readiness, Served, bind_and_serve, serve_ops};
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Broadcast stop signal: `trigger()` once, every holder of a receiver sees it.
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
        }
    }
}

impl Shutdown {
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    /// Resolves once the signal is given.
    pub fn wait(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.receiver();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The state store. It connects on first use: a Redis that cannot be reached yet
/// fails no start (each process waits for it, not ready meanwhile).
pub async fn connect_store(settings: &Settings) -> anyhow::Result<StateStore> {
    let conn = RedisConn::open(&settings.redis)
        .with_context(|| format!("redis.url {}", settings.redis.url))?;
    Ok(StateStore::new(
        conn,
        &settings.redis.key_prefix,
        settings.redis.retention_ms,
    ))
}

/// The epay client: its HTTP API and its invoice allocator in Redis.
pub async fn epay(settings: &Settings, metrics: Arc<Metrics>) -> anyhow::Result<Arc<Epay>> {
    let secret = settings.secrets.epay()?;
    let api = crate::providers::epay::api::Api::new(settings.epay.clone(), secret.clone())?;
    let conn = RedisConn::open(&settings.redis)
        .with_context(|| format!("redis.url {}", settings.redis.url))?;
    let invoices = crate::providers::epay::invoice::Invoices::new(
        conn,
        &settings.redis.key_prefix,
        &settings.epay.terminal_id,
        settings.redis.retention_ms,
        secret,
    );
    Ok(Arc::new(Epay::new(api, invoices, metrics)))
}

/// Keeps `ready` saying whether Redis answers, until `shutdown`: for the processes
/// whose Redis calls follow requests (the gateway), not a loop of their own.
fn watch_redis(
    store: StateStore,
    settings: &Settings,
    metrics: Arc<Metrics>,
    ready: Readiness,
    shutdown: &Shutdown,
) {
    let backoff = settings.reconnect.backoff();
    let stop = shutdown.wait();
    tokio::spawn(async move {
        let watching = async {
            loop {
                store.reach(backoff, &metrics, &ready).await;
                tokio::time::sleep(REDIS_CHECK_EVERY).await;
            }
        };
        tokio::select! {
            _ = watching => {}
            _ = stop => {}
        }
    });
}

/// How often the gateway asks Redis whether it is there, for /readyz.
const REDIS_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The ECommPay client, alone: what `payfleet banks` needs.
pub fn ecommpay(settings: &Settings) -> anyhow::Result<Arc<Ecommpay>> {
    let e = &settings.ecommpay;
    let gate = Gate::new(
        &e.base_url,
        e.project_id,
        settings.secrets.ecommpay()?,
        Duration::from_millis(e.connect_timeout_ms),
        Duration::from_millis(e.request_timeout_ms),
    )?;
    let mut accounts = std::collections::BTreeMap::new();
    for (name, account) in &e.accounts {
        let secret = settings.secrets.ecommpay_account(name)?;
        accounts.insert(name.clone(), gate.for_project(account.project_id, secret));
    }
    Ok(Arc::new(
        Ecommpay::new(gate).with_accounts(accounts).with_india(
            Arc::new(OffsetClock::from_ms(e.clock_offset_ms)),
            Duration::from_millis(e.bank_list_ttl_ms),
        ),
    ))
}

/// The clients of the enabled providers. Every secret they need is checked at once
/// first, so that a start names all that is missing.
pub async fn providers(settings: &Settings, metrics: &Arc<Metrics>) -> anyhow::Result<Providers> {
    settings.require_provider_secrets()?;
    Ok(Providers {
        ecommpay: match settings.ecommpay.enabled {
            true => Some(ecommpay(settings)?),
            false => None,
        },
        epay: match settings.epay.enabled {
            true => Some(epay(settings, metrics.clone()).await?),
            false => None,
        },
        time_scale: settings.reconciler.time_scale,
    })
}

/// Starts a reconciler; with `serve_ops_endpoints` it also serves its ops endpoints on
/// `reconciler.ops_listen` (standalone), otherwise it reports into `metrics`.
pub async fn spawn_reconciler(
    settings: &Settings,
    shutdown: &Shutdown,
    serve_ops_endpoints: bool,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(Option<SocketAddr>, JoinHandle<()>)> {
    let ready = Readiness::default();
    let ops = if serve_ops_endpoints {
        let listen = settings.reconciler.ops_listen;
        let (addr, _) = serve_ops(listen, metrics.clone(), ready.clone(), shutdown.wait())
            .await
            .with_context(|| format!("binding reconciler.ops_listen {listen}"))?;
        Some(addr)
    } else {
        None
    };
    let names = Names::new(&settings.amqp.namespace);
    let owner = uuid::Uuid::new_v4().simple().to_string();
    let canary = Canary::new(
        &settings.amqp.url,
        names.clone(),
        Shape::of(settings),
        &owner,
    );
    let reconciler = Reconciler {
        store: connect_store(settings).await?,
        providers: providers(settings, &metrics).await?,
        link: PublisherLink::new(
            &settings.amqp.url,
            "payfleet-reconciler",
            names,
            metrics.clone(),
            ready.clone(),
        ),
        limiter: Arc::new(RateLimiter::from_settings(settings, metrics.clone())?),
        metrics,
        ready,
        interval: Duration::from_millis(settings.reconciler.interval_ms),
        backoff: settings.reconnect.backoff(),
        batch: settings.reconciler.batch,
        owner,
        last_outage: Default::default(),
        canary: tokio::sync::Mutex::new(canary),
        stalled_since: Default::default(),
    };
    Ok((ops, tokio::spawn(reconciler.run(shutdown.receiver()))))
}

/// Starts a worker and its ops endpoints (and the embedded reconciler when
/// `reconciler.embedded`); the task ends after `shutdown`.
pub async fn spawn_worker(
    settings: &Settings,
    name: &str,
    shutdown: &Shutdown,
    serve_ops_endpoints: bool,
) -> anyhow::Result<(Option<SocketAddr>, JoinHandle<anyhow::Result<()>>)> {
    // Every secret a worker needs, named at once. It decodes commands: without the
    // fleet's key for card data it refuses to start.
    let metrics = Arc::new(Metrics::new("worker"));
    let providers = providers(settings, &metrics).await?;
    let fingerprint_key = FingerprintKey::new(settings.fingerprint_key()?);
    let ready = Readiness::default();
    let store = connect_store(settings).await?;
    let ops = if serve_ops_endpoints {
        let listen = settings.worker.ops_listen;
        let (addr, _) = serve_ops(listen, metrics.clone(), ready.clone(), shutdown.wait())
            .await
            .with_context(|| format!("binding worker.ops_listen {}", settings.worker.ops_listen))?;
        Some(addr)
    } else {
        None
    };
    let reconciler = match settings.reconciler.embedded {
        true => Some(
            spawn_reconciler(settings, shutdown, false, metrics.clone())
                .await?
                .1,
        ),
        false => None,
    };
    let worker = Worker::new(
        settings.clone(),
        store,
        providers,
        metrics,
        ready,
        name.to_owned(),
        fingerprint_key,
    );
    let stop = shutdown.receiver();
    let task = tokio::spawn(async move {
        let result = worker.run(stop).await;
        if let Some(r) = reconciler {
            let _ = r.await;
        }
        result
    });
    Ok((ops, task))
}

/// Where a started gateway listens.
#[derive(Debug, Clone, Copy)]
pub struct GatewayAddrs {
    /// `gateway.listen`: providers' callbacks.
    pub callbacks: SocketAddr,
    /// `gateway.ops_listen`: `/metrics`, `/healthz`, `/readyz`.
    pub ops: SocketAddr,
}

/// Starts the gateway: callbacks on `gateway.listen`, ops endpoints on
/// `gateway.ops_listen`; the task ends after `shutdown`, once callbacks in progress
/// are answered.
pub async fn spawn_gateway(
    settings: &Settings,
    shutdown: &Shutdown,
) -> anyhow::Result<(GatewayAddrs, JoinHandle<()>)> {
    let metrics = Arc::new(Metrics::new("gateway"));
    let ready = Readiness::default();
    let store = connect_store(settings).await?;
    let names = Names::new(&settings.amqp.namespace);
    let link = PublisherLink::new(
        &settings.amqp.url,
        "payfleet-gateway",
        names,
        metrics.clone(),
        ready.clone(),
    );
    watch_redis(
        store.clone(),
        settings,
        metrics.clone(),
        ready.clone(),
        shutdown,
    );
    let gw = Arc::new(Gateway {
        store,
        link,
        providers: providers(settings, &metrics).await?,
        metrics: metrics.clone(),
    });
    let g = &settings.gateway;
    let (ops, _) = serve_ops(g.ops_listen, metrics.clone(), ready, shutdown.wait())
        .await
        .with_context(|| format!("binding gateway.ops_listen {}", g.ops_listen))?;
    let served = Served {
        listener: Listener::Callbacks,
        limits: Limits::from(g),
        metrics,
    };
    let (callbacks, server) = bind_and_serve(
        g.listen,
        gateway::router(gw.clone()),
        served,
        shutdown.wait(),
    )
    .await
    .with_context(|| format!("binding gateway.listen {}", g.listen))?;
    let shutdown_wait = shutdown.wait();
    // Reached now rather than at the first callback (which would reconnect too), so
    // that /readyz tells; a broker away fails no start.
    let backoff = settings.reconnect.backoff();
    let task = tokio::spawn(async move {
        tokio::select! {
            _ = gw.link.connect_patiently(backoff) => {}
            _ = shutdown_wait => {}
        }
        let _ = server.await;
        gw.link.close().await;
    });
    Ok((GatewayAddrs { callbacks, ops }, task))
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_worker_without_the_fingerprint_key_refuses_to_start() {
        let settings = crate::config::Settings::load_from(
            None,
            Default::default(),
            crate::config::Needs::Settings,
        )
        .unwrap();
        let shutdown = super::Shutdown::default();
        let err = super::spawn_worker(&settings, "w", &shutdown, false)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("PAYFLEET__EPAY__FINGERPRINT_KEY"),
            "{err}"
        );
    }
}
