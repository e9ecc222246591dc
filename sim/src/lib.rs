//! The provider simulator: a local stand-in for ECommPay Gate, written from the
//! provider documents, with signed callbacks, resends and statistics. Tests, the demo
//! and the benchmarks reach "the provider" only through it.

pub mod arrivals;
mod callbacks;
pub mod ecommpay;
pub mod epay;
pub mod faults;
pub mod limits;
mod stats;

pub use faults::Faults;
pub use stats::Stats;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use payfleet::app::Shutdown;
use payfleet::config::{SandboxSettings, Settings};
use payfleet::telemetry::{Metrics, Readiness, ops_router, serve_on};
use secrecy::SecretString;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

pub struct Sandbox {
    pub settings: SandboxSettings,
    pub ecommpay_secret: SecretString,
    pub stats: Mutex<Stats>,
    pub ecommpay: Mutex<ecommpay::Payments>,
    pub epay_client_secret: SecretString,
    pub epay: Mutex<epay::Book>,
    /// What Banks of India purchases keep beyond their payment (redirects, refunds).
    pub india: Mutex<ecommpay::india_sale::Purchases>,
    pub faults: std::sync::RwLock<Faults>,
    pub http: reqwest::Client,
    pub metrics: Arc<Metrics>,
    pub arrivals: arrivals::Arrivals,
    pub limits: limits::AccountLimits,
}

impl Sandbox {
    pub fn new(
        settings: SandboxSettings,
        ecommpay_secret: SecretString,
        epay_client_secret: SecretString,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Sandbox {
            settings,
            ecommpay_secret,
            stats: Mutex::new(Stats::default()),
            ecommpay: Mutex::new(ecommpay::Payments::default()),
            epay_client_secret,
            epay: Mutex::new(epay::Book::default()),
            india: Mutex::default(),
            faults: Default::default(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("an HTTP client builds"),
            metrics,
            arrivals: Default::default(),
            limits: Default::default(),
        })
    }

    pub fn stats(&self) -> Stats {
        self.stats.lock().expect("stats lock").clone()
    }

    pub fn faults(&self) -> Faults {
        self.faults.read().expect("faults lock").clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.write().expect("faults lock") = faults;
    }
}

pub fn router(sandbox: Arc<Sandbox>) -> Router {
    let ready = Readiness::default();
    ready.set(true);
    let providers = ecommpay::routes()
        .merge(epay::routes())
        .layer(axum::middleware::from_fn_with_state(
            sandbox.clone(),
            faults::inject,
        ))
        .layer(axum::middleware::from_fn_with_state(
            sandbox.clone(),
            limits::count_and_limit,
        ));
    // Outermost, so an arrival is timed before any injected delay.
    let providers = providers.layer(axum::middleware::from_fn_with_state(
        sandbox.clone(),
        arrivals::record,
    ));
    Router::new()
        .merge(providers)
        .merge(ecommpay::bank_pages())
        .route(
            "/sandbox/stats",
            get(|State(s): State<Arc<Sandbox>>| async move { axum::Json(s.stats()) }),
        )
        .route(
            "/sandbox/arrivals",
            get(|State(s): State<Arc<Sandbox>>| async move { axum::Json(s.arrivals.all()) }),
        )
        .route(
            "/sandbox/faults",
            get(|State(s): State<Arc<Sandbox>>| async move { axum::Json(s.faults()) }).put(
                |State(s): State<Arc<Sandbox>>, axum::Json(f): axum::Json<Faults>| async move {
                    s.set_faults(f);
                    axum::Json(s.faults())
                },
            ),
        )
        .route(
            "/sandbox/limits",
            get(|State(s): State<Arc<Sandbox>>| async move { axum::Json(s.limits.get()) }).put(
                |State(s): State<Arc<Sandbox>>, axum::Json(l): axum::Json<limits::Limits>| async move {
                    s.limits.set(l);
                    axum::Json(s.limits.get())
                },
            ),
        )
        .with_state(sandbox.clone())
        .merge(ops_router(sandbox.metrics.clone(), ready))
}

/// Starts the simulator; returns its address and its state (for stats).
pub async fn spawn(
    settings: &Settings,
    shutdown: &Shutdown,
) -> anyhow::Result<(SocketAddr, Arc<Sandbox>, JoinHandle<()>)> {
    let listen = settings.sandbox.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding sandbox.listen {listen}"))?;
    spawn_on(listener, settings, shutdown)
}

/// Starts the simulator on a listener already bound, so that its address can be
/// configured into the processes that call it before it starts.
pub fn spawn_on(
    listener: tokio::net::TcpListener,
    settings: &Settings,
    shutdown: &Shutdown,
) -> anyhow::Result<(SocketAddr, Arc<Sandbox>, JoinHandle<()>)> {
    let metrics = Arc::new(Metrics::new("sandbox"));
    let sb = Sandbox::new(
        settings.sandbox.clone(),
        settings.secrets.sandbox_ecommpay()?,
        settings.secrets.sandbox_epay()?,
        metrics,
    );
    let (addr, task) = serve_on(listener, router(sb.clone()), shutdown.wait())?;
    Ok((addr, sb, task))
}
